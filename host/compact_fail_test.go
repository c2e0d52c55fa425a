package host

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/host/internal/pipeline"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

var errInjected = errors.New("injected storage failure")

// faultStore fails the write (Put or Create) number failPut (1-based,
// counted from arming) and, when failGet is set, every Get of a key
// containing it.
type faultStore struct {
	objstore.Store
	armed   atomic.Bool
	puts    atomic.Int64
	failPut int64
	failGet string
}

func (f *faultStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.fail(r, size) {
		return errInjected
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *faultStore) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.fail(r, size) {
		return errInjected
	}
	return f.Store.Create(ctx, key, r, size)
}

// fail counts a write and reports whether it is the one to fail, having
// consumed half its body (a failure mid-write).
func (f *faultStore) fail(r io.Reader, size int64) bool {
	if f.armed.Load() && f.puts.Add(1) == f.failPut {
		io.Copy(io.Discard, io.LimitReader(r, size/2))
		return true
	}
	return false
}

func (f *faultStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if f.armed.Load() && f.failGet != "" && strings.Contains(key, f.failGet) {
		return nil, errInjected
	}
	return f.Store.Get(ctx, key)
}

func (f *faultStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if f.armed.Load() && f.failGet != "" && strings.Contains(key, f.failGet) {
		return nil, errInjected
	}
	return f.Store.GetRange(ctx, key, off, n)
}

// manyOutputs makes a plan write many objects: small chunks, small outputs.
func manyOutputs(t testing.TB, plan *datapb.CompactionPlan) {
	plan.MaxSize = 20_000
	plan.JsonParams = setBinlogMaxSize(t, plan.JsonParams, 8<<10)
}

// expectCleanFailure checks the aftermath of a failed Compact: the error
// (kind and stage), nothing added or changed in the store, the lease
// returned.
func expectCleanFailure(t *testing.T, h *Host, store objstore.Store, before map[string][]byte, err error, kind error, stage string) *CompactError {
	t.Helper()
	if err == nil {
		t.Fatal("Compact succeeded, want a failure")
	}
	var ce *CompactError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *CompactError", err, err)
	}
	if !errors.Is(err, kind) || (stage != "" && ce.Stage != stage) {
		t.Fatalf("error %v: stage %q, want %q and errors.Is %v", err, ce.Stage, stage, kind)
	}
	if !strings.Contains(err.Error(), "plan ") {
		t.Fatalf("error %q does not name the plan", err)
	}
	if d := diffSnapshots(before, snapshot(t, store)); len(d) > 0 {
		t.Fatalf("store changed by the failed task: %v", d)
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d after the failure, want 0", u)
	}
	return ce
}

// TestCompactStorageFailures: a Put failing mid-write (mix outputs at
// several points, L0 deltalogs) and a failing read leave no new object,
// the inputs unchanged and the pool empty; the next Compact succeeds.
func TestCompactStorageFailures(t *testing.T) {
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	objstoretest.Run(t, func(t *testing.T, base objstore.Store) {
		ctx := context.Background()
		col := generate(t, base, smallGen(3))
		plan := col.MixPlan
		manyOutputs(t, plan)
		fs := &faultStore{Store: base}
		h := newTestHost(t, fs, 0, nil)
		before := snapshot(t, base)
		for _, n := range []int64{1, 5, 40} {
			fs.puts.Store(0)
			fs.failPut = n
			fs.armed.Store(true)
			_, err := h.Compact(ctx, plan, WithPlugin(plugins.mix))
			fs.armed.Store(false)
			ce := expectCleanFailure(t, h, base, before, err, errInjected, "write")
			if ce.Plugin.Name != "mix" {
				t.Fatalf("error names plugin %v, want mix", ce.Plugin)
			}
		}
		fs.failPut = 2
		fs.puts.Store(0)
		fs.armed.Store(true)
		_, err := h.Compact(ctx, col.L0Plan, WithPlugin(plugins.l0))
		fs.armed.Store(false)
		expectCleanFailure(t, h, base, before, err, errInjected, "write")

		fs.failPut, fs.failGet = 0, "/insert_log/"
		fs.armed.Store(true)
		_, err = h.Compact(ctx, plan, WithPlugin(plugins.mix))
		fs.armed.Store(false)
		expectCleanFailure(t, h, base, before, err, errInjected, "read")

		var pr progressRecorder
		h.opts.Progress = pr.record
		res, err := h.Compact(ctx, plan, WithPlugin(plugins.mix))
		if err != nil {
			t.Fatal(err)
		}
		checkMix(t, base, plan, res, pr.final())
	})
}

// failingMix is the mix strategy failing (a recovered panic, as the SDK
// reports it) after some batches, when outputs have already been written.
type failingMix struct {
	*mixstrategy.Strategy
	after int
	seen  int
}

func (f *failingMix) Batch(b *sdk.Batch, out sdk.Emitter) error {
	if f.seen++; f.seen > f.after {
		panic("strategy bug")
	}
	return f.Strategy.Batch(b, out)
}

// TestCompactStrategyFailures: a trapping wasm module, an ABI-misusing one,
// a looping one hitting the deadline, a native strategy failing after
// outputs were written and a cancelled context all fail with the host's
// typed errors naming plugin and plan, leave the store as it was and the
// pool empty; the next Compact succeeds.
func TestCompactStrategyFailures(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(4))
	plan := col.MixPlan
	manyOutputs(t, plan)
	h := newTestHost(t, store, 0, nil)
	before := snapshot(t, store)

	trap := admit(t, rt, "mix@0.0.1", tmModule(tmOpts{version: "0.0.1", batchBody: tmTrapBody}))
	_, err := h.Compact(ctx, plan, WithPlugin(trap))
	ce := expectCleanFailure(t, h, store, before, err, ErrTrap, "strategy")
	if !strings.Contains(err.Error(), "mix@0.0.1") || ce.Plugin.Version != "0.0.1" {
		t.Fatalf("error %q does not name the plugin", err)
	}

	// finish emits rows 3..6 of segment 0 into output 1 before output 0.
	misuse := admit(t, rt, "mix@0.0.2", tmModule(tmOpts{version: "0.0.2"}))
	_, err = h.Compact(ctx, plan, WithPlugin(misuse))
	expectCleanFailure(t, h, store, before, err, ErrABIMisuse, "strategy")
	if !strings.Contains(err.Error(), "output 1") {
		t.Fatalf("misuse error %q does not explain the bad output", err)
	}

	loop := admit(t, rt, "mix@0.0.3", tmModule(tmOpts{version: "0.0.3", batchBody: tmLoopBody}))
	start := time.Now()
	h.opts.TaskTimeout = time.Second
	_, err = h.Compact(ctx, plan, WithPlugin(loop))
	h.opts.TaskTimeout = time.Minute
	expectCleanFailure(t, h, store, before, err, ErrDeadline, "strategy")
	if took := time.Since(start); took > time.Minute {
		t.Fatalf("deadline took %v", took)
	}

	_, err = h.Compact(ctx, plan, Native(&failingMix{Strategy: mixstrategy.New(), after: 3}))
	expectCleanFailure(t, h, store, before, err, ErrGuestFailed, "strategy")
	if !strings.Contains(err.Error(), "strategy bug") {
		t.Fatalf("error %q lacks the panic message", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	var once sync.Once
	h.opts.Progress = func(p Progress) {
		if p.RowsRead >= 2000 {
			once.Do(cancel)
		}
	}
	_, err = h.Compact(cctx, plan, Native(mixstrategy.New()))
	expectCleanFailure(t, h, store, before, err, context.Canceled, "")
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("cancelled task: %v is not ErrDeadline", err)
	}
	h.opts.Progress = nil

	var pr progressRecorder
	h.opts.Progress = pr.record
	res, err := h.Compact(ctx, plan, WithPlugin(bundledPlugins(t, rt).mix))
	if err != nil {
		t.Fatal(err)
	}
	checkMix(t, store, plan, res, pr.final())
}

// oomRows is the rows of the one segment oomModule's plan has.
const oomRows = 200

// oomModule is a strategy whose batch grows memory by pages and returns
// OUT_OF_MEMORY when the grant refuses; finish keeps nothing and counts
// the oomRows rows of segment 0 as dropped for another reason.
func oomModule(version string, pages int32) []byte {
	grow := wt.Seq(wt.I32Const(pages), []byte{wt.OpMemoryGrow, 0x00}, wt.I32Const(-1), []byte{0x46}, wt.I32Const(2), []byte{0x6c})
	return tmModule(tmOpts{version: version, batchBody: grow, finishBody: tmEmitCounterBody, counter: abi.Counter{Other: oomRows}})
}

// TestCompactOutOfMemoryRetry: a strategy out of memory is retried once
// with twice the grant when the pool allows, and fails with ErrOutOfMemory
// when it does not.
func TestCompactOutOfMemoryRetry(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	store := objstoretest.Local(t)
	cfg := smallGen(5)
	cfg.Segments, cfg.RowsPerSegment = 1, oomRows
	col := generate(t, store, cfg)
	var logs syncBuffer
	h := newTestHost(t, store, 0, func(o *Options) { o.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs}) })

	// Learn the grant the plan gets, then make the strategy need a bit more.
	probe := admit(t, rt, "mix@0.1.0", oomModule("0.1.0", 0))
	p, err := pipeline.Validate(col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	grant, _, lease, err := h.leaseFor(ctx, p, &wasmStrategy{p: probe})
	if err != nil {
		t.Fatal(err)
	}
	total := lease.Size()
	h.Pool().Return(lease)
	pages := int32(grant / wasmPage) // initial 2 pages + this exceeds the grant, fits twice the grant

	retry := admit(t, rt, "mix@0.1.1", oomModule("0.1.1", pages))
	res, err := h.Compact(ctx, col.MixPlan, WithPlugin(retry))
	if err != nil {
		t.Fatalf("retry with a larger grant failed: %v", err)
	}
	if !strings.Contains(logs.String(), "retrying once with a larger grant") {
		t.Fatalf("no retry logged:\n%s", logs.String())
	}
	if segs := res.GetSegments(); len(segs) != 1 || segs[0].GetNumOfRows() != 0 {
		t.Fatalf("result %v, want the placeholder", segs)
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d, want 0", u)
	}

	tight := newTestHost(t, store, total+1, nil)
	before := snapshot(t, store)
	_, err = tight.Compact(ctx, col.MixPlan, WithPlugin(retry))
	expectCleanFailure(t, tight, store, before, err, ErrOutOfMemory, "strategy")
}

// TestCompactMisuseChecks: decisions the host cannot apply fail the task
// as ABI misuse naming the plugin.
func TestCompactMisuseChecks(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	cfg := smallGen(6)
	cfg.DeleteFraction, cfg.ExpiredFraction = 0, 0
	col := generate(t, store, cfg)
	h := newTestHost(t, store, 0, nil)
	before := snapshot(t, store)
	for _, c := range []struct {
		name string
		runs func(b *sdk.Batch) []abi.Run
		want string
	}{
		{"twice", func(b *sdk.Batch) []abi.Run {
			return []abi.Run{{Segment: b.Segment, FirstRow: uint32(b.FirstRow), Count: 2}, {Segment: b.Segment, FirstRow: uint32(b.FirstRow) + 1, Count: 1}}
		}, "a second time"},
		{"beyond segment", func(b *sdk.Batch) []abi.Run {
			return []abi.Run{{Segment: b.Segment, FirstRow: 1499, Count: 5}}
		}, "which has 1500 rows"},
		{"not delivered", func(b *sdk.Batch) []abi.Run {
			return []abi.Run{{Segment: b.Segment, FirstRow: uint32(b.FirstRow) + uint32(b.Rows), Count: 1}}
		}, "delivered so far"},
		{"output range", func(b *sdk.Batch) []abi.Run {
			return []abi.Run{{Segment: b.Segment, FirstRow: uint32(b.FirstRow), Count: 1, Output: 1 << 30}}
		}, "outputs"},
		{"backwards", func(b *sdk.Batch) []abi.Run {
			switch {
			case b.Segment == 0 && b.FirstRow == 500: // moves past the batch of rows [0, 500)
				return []abi.Run{{Segment: 0, FirstRow: 500, Count: 1}}
			case b.Segment == 0 && b.FirstRow == 1000: // goes back into it
				return []abi.Run{{Segment: 0, FirstRow: 0, Count: 1}}
			}
			return nil
		}, "already moved past row 500"},
		{"segment", func(b *sdk.Batch) []abi.Run {
			return []abi.Run{{Segment: 9, Count: 1}}
		}, "segment 9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Compact(ctx, col.MixPlan, Native(&emitter{runs: c.runs}))
			expectCleanFailure(t, h, store, before, err, ErrABIMisuse, "strategy")
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad@1.0.0") {
				t.Fatalf("error %q, want it to name the plugin and contain %q", err, c.want)
			}
		})
	}
	_, err := h.Compact(ctx, col.L0Plan, Native(l0strategy.New()))
	if err != nil {
		t.Fatal(err)
	}
}

// emitter is a native strategy emitting the given runs for every batch.
type emitter struct{ runs func(b *sdk.Batch) []abi.Run }

func (e *emitter) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "bad", Version: "1.0.0", Handles: []string{abi.CompactionMix}}
}
func (e *emitter) Begin(*sdk.Task) error          { return nil }
func (e *emitter) Deletes(*sdk.DeleteBatch) error { return nil }
func (e *emitter) Finish(sdk.Emitter) error       { return nil }
func (e *emitter) Batch(b *sdk.Batch, out sdk.Emitter) error {
	if runs := e.runs(b); len(runs) > 0 {
		return out.Runs(runs)
	}
	return nil
}
