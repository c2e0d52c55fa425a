package host

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

// Layout of the hand-written test modules' memory.
const (
	tmManifestAt = 1024  // manifest JSON
	tmDecisionAt = 2048  // the Run record emitted by finish
	tmFailMsgAt  = 2100  // "boom"
	tmCounterAt  = 2304  // tmOpts.counter, emitted by tmEmitCounterBody
	tmBufferAt   = 65536 // start of the input buffer returned by alloc
)

// tmOpts varies the hand-written strategy module.
type tmOpts struct {
	name         string // manifest name (default "mix")
	version      string // manifest version (default "1.0.0")
	abi          int    // manifest abi (default 1)
	hostModule   string // import module for emit (default compact_v1)
	exportPrefix string // export prefix (default compact_v1_)
	skipExport   string // export to leave out (full name with prefix)
	extraImport  [2]string
	minPages     uint32 // default 2
	batchBody    []byte // body of batch (params ptr,len; result status); default returns 0
	finishBody   []byte // body of finish; default emits 8 bytes and returns emit's status
	allocBody    []byte // body of alloc; default returns tmBufferAt
	tag          string // custom section content, to vary the sha256
	counter      abi.Counter
	initBody     []byte // body of an exported _initialize; none if nil
}

// tmRun is the one decision the hand-written module emits.
var tmRun = abi.Run{Segment: 0, FirstRow: 3, Count: 4, Output: 1}

// tmModule assembles a minimal ABI v1 strategy: alloc returns a fixed
// buffer, begin/deletes/batch accept anything, finish emits tmRun.
// Imports: emit (function index 0), fail (1), log (2), probe (3).
func tmModule(o tmOpts) []byte {
	if o.name == "" {
		o.name = "mix"
	}
	if o.version == "" {
		o.version = "1.0.0"
	}
	if o.abi == 0 {
		o.abi = 1
	}
	if o.hostModule == "" {
		o.hostModule = "compact_v1"
	}
	if o.exportPrefix == "" {
		o.exportPrefix = "compact_v1_"
	}
	if o.minPages == 0 {
		o.minPages = 2
	}
	m := wt.New()
	i32, i64 := wt.I32, wt.I64
	emit := m.Import(o.hostModule, "emit", []byte{i32, i32, i32}, []byte{i32})
	m.Import(o.hostModule, "fail", []byte{i32, i32, i32}, nil)
	m.Import(o.hostModule, "log", []byte{i32, i32, i32}, nil)
	m.Import(o.hostModule, "probe", []byte{i32, i32, i32}, []byte{i32})
	if o.extraImport[0] != "" {
		m.Import(o.extraImport[0], o.extraImport[1], nil, nil)
	}
	manifest := fmt.Sprintf(`{"abi":%d,"name":%q,"version":%q,"handles":["mix"],"fields":["pk","ts"]}`, o.abi, o.name, o.version)
	m.Memory(o.minPages, -1).Data(tmManifestAt, []byte(manifest))
	dec := make([]byte, 16)
	if _, err := abi.PutRuns(dec, []abi.Run{tmRun}); err != nil {
		panic(err)
	}
	m.Data(tmDecisionAt, dec).Data(tmFailMsgAt, []byte("boom"))
	cnt := make([]byte, abi.CounterSize)
	if _, err := abi.PutCounters(cnt, []abi.Counter{o.counter}); err != nil {
		panic(err)
	}
	m.Data(tmCounterAt, cnt)
	if o.tag != "" {
		m.Custom("test-tag", []byte(o.tag))
	}
	if o.allocBody == nil {
		o.allocBody = wt.I32Const(tmBufferAt)
	}
	if o.batchBody == nil {
		o.batchBody = wt.I32Const(0)
	}
	if o.finishBody == nil {
		o.finishBody = wt.Seq(wt.I32Const(1), wt.I32Const(tmDecisionAt), wt.I32Const(16), wt.Call(emit))
	}
	status2 := wt.Func{Params: []byte{i32, i32}, Results: []byte{i32}, Body: wt.I32Const(0)}
	funcs := []struct {
		name string
		f    wt.Func
	}{
		{"alloc", wt.Func{Params: []byte{i32}, Results: []byte{i32}, Body: o.allocBody}},
		{"manifest", wt.Func{Results: []byte{i64}, Body: wt.I64Const(wt.PackPtrLen(tmManifestAt, uint32(len(manifest))))}},
		{"begin", status2},
		{"deletes", status2},
		{"batch", wt.Func{Params: []byte{i32, i32}, Results: []byte{i32}, Locals: []byte{i32}, Body: o.batchBody}},
		{"finish", wt.Func{Results: []byte{i32}, Body: o.finishBody}},
	}
	for _, f := range funcs {
		idx := m.Func(f.f)
		if o.exportPrefix+f.name != o.skipExport {
			m.Export(o.exportPrefix+f.name, idx)
		}
	}
	if o.initBody != nil {
		m.Export("_initialize", m.Func(wt.Func{Body: o.initBody}))
	}
	return m.Bytes()
}

// Instruction fragments for hostile batch bodies.
var (
	// emit tmOpts.counter and return emit's status
	tmEmitCounterBody = wt.Seq(wt.I32Const(int32(abi.EmitCounters)), wt.I32Const(tmCounterAt), wt.I32Const(abi.CounterSize), wt.Call(0))
	// endless loop
	tmLoopBody = wt.Seq(wt.Loop(nil), wt.I32Const(0))
	// grow memory 16 pages at a time until refused, then trap
	tmBombBody = wt.Seq(
		[]byte{wt.OpLoop, 0x40},
		wt.I32Const(16), []byte{wt.OpMemoryGrow, 0x00},
		wt.I32Const(-1), []byte{0x47, wt.OpBrIf, 0x00}, // i32.ne; br_if 0 (grow again)
		[]byte{wt.OpEnd, wt.OpUnreachable},
	)
	// emit from an out-of-range pointer
	tmBadPtrBody = wt.Seq(wt.I32Const(1), wt.I32Const(-64), wt.I32Const(4096), wt.Call(0))
	// alloc returning a pointer near the end of the address space
	tmBadAllocBody = wt.I32Const(-128)
	// alloc reporting it cannot allocate
	tmZeroAllocBody = wt.I32Const(0)
	// fail("boom") then status ERROR
	tmFailBody = wt.Seq(wt.I32Const(1), wt.I32Const(tmFailMsgAt), wt.I32Const(4), wt.Call(1), wt.I32Const(1))
	// emit a 4-byte runs record the decoder rejects
	tmEmitShortBody = wt.Seq(wt.I32Const(1), wt.I32Const(tmDecisionAt), wt.I32Const(4), wt.Call(0))
	// log "boom" 1000 times (local 2 counts)
	tmLogFloodBody = wt.Seq(
		[]byte{wt.OpLoop, 0x40},
		wt.I32Const(2), wt.I32Const(tmFailMsgAt), wt.I32Const(4), wt.Call(2),
		wt.LocalGet(2), wt.I32Const(1), []byte{0x6a, 0x22, 0x02}, // i32.add; local.tee 2
		wt.I32Const(1000), []byte{0x49, wt.OpBrIf, 0x00, wt.OpEnd}, // i32.lt_u; br_if 0
		wt.I32Const(0),
	)
	// probe the batch's first 16 bytes (two pairs), hits at 3000; return its status
	tmProbeBody = wt.Seq(wt.I32Const(tmBufferAt), wt.I32Const(16), wt.I32Const(3000), wt.Call(3))
	// probe with the hits pointer past the end of memory
	tmProbeBadOutBody = wt.Seq(wt.I32Const(tmBufferAt), wt.I32Const(16), wt.I32Const(-1), wt.Call(3))
	// trap directly
	tmTrapBody = []byte{wt.OpUnreachable}
)
