//go:build !wasip1

package mixstrategy_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/abi/sdk/sdktest"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

const benchRows = 8192

// discard is a Host that accepts and drops every decision.
type discard struct{}

func (discard) Emit(abi.EmitKind, []byte) abi.Status { return abi.StatusOK }
func (discard) Probe(_, _ []byte) abi.Status         { return abi.StatusUnsupported }

// benchInput is nseg huge input segments, 1024 deletes on each (half of
// them newer than the rows), a 1-day TTL no row reaches, and one
// 8192-row batch per segment whose header and pks next() rewrites for
// each round (pks rise across rounds, so sorted inputs stay sorted).
type benchInput struct {
	task    []byte
	dels    [][]byte
	batches [][]byte
	pks     [][]int64 // views into batches
}

func newBenchInput(b *testing.B, nseg int, sorted bool) *benchInput {
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(1_764_057_600_000)
	segs := make([]abi.Segment, nseg)
	for s := range segs {
		segs[s] = abi.Segment{Rows: 1<<32 - 1, Deletes: 1024, Sorted: sorted}
	}
	in := &benchInput{task: taskBytes(b, taskOf(abi.TypeInt64, segs, func(t *abi.Task) {
		t.NowMs, t.CollectionTTLNs, t.MaxSize, t.MaxOutputs = now, 86_400*1e9, 64<<20, 1<<20
	}))}
	rowTS := same(benchRows, now<<18)
	sizes := same(benchRows, uint32(100))
	for s := range nseg {
		dp, dt := make([]int64, 1024), make([]int64, 1024)
		for i := range dp {
			dp[i], dt[i] = int64(r.IntN(benchRows*nseg)), (now+int64(i%2*2-1))<<18
		}
		in.dels = append(in.dels, delBatch(b, uint32(s), uint64(s*1024), dp, dt))
		batch := rowsBatch(b, uint32(s), 0, make([]int64, benchRows), rowTS, sizes)
		d, err := abi.DecodeBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		in.batches = append(in.batches, batch)
		in.pks = append(in.pks, d.Column(0).Int64s())
	}
	return in
}

// next prepares round k: first_row and pks of every segment's batch.
func (in *benchInput) next(k int, sorted bool) {
	nseg := len(in.batches)
	for s, pks := range in.pks {
		binary.LittleEndian.PutUint64(in.batches[s][16:], uint64(k)*benchRows)
		for i := range pks {
			if sorted {
				pks[i] = int64(k*benchRows*nseg + i*nseg + s)
			} else {
				pks[i] = int64((i*7919 + s) % (benchRows * nseg))
			}
		}
	}
}

// target is what a benchmark feeds: the native Driver or a wasm guest.
type target interface {
	Begin(task []byte) error
	Deletes(buf []byte) error
	Batch(buf []byte) error
}

// guestTarget adapts a wasm guest to target: a non-OK status becomes an
// *abi.Error with the guest's fail message.
type guestTarget struct{ g *sdktest.Guest }

func (w guestTarget) Begin(task []byte) error  { return w.err(w.g.Begin(task)) }
func (w guestTarget) Deletes(buf []byte) error { return w.err(w.g.Deletes(buf)) }
func (w guestTarget) Batch(buf []byte) error   { return w.err(w.g.Batch(buf)) }

func (w guestTarget) err(st abi.Status) error {
	if st == abi.StatusOK {
		return nil
	}
	return &abi.Error{Status: st, Message: w.g.Failed}
}

// bench begins in's task on tg, delivers its deletes, then times rounds of
// one batch per segment.
func bench(b *testing.B, tg target, in *benchInput, sorted bool) {
	if err := tg.Begin(in.task); err != nil {
		b.Fatalf("begin: %v", err)
	}
	for _, del := range in.dels {
		if err := tg.Deletes(del); err != nil {
			b.Fatalf("deletes: %v", err)
		}
	}
	k := 0
	for b.Loop() {
		b.StopTimer()
		in.next(k, sorted)
		k++
		b.StartTimer()
		for _, batch := range in.batches {
			if err := tg.Batch(batch); err != nil {
				b.Fatalf("batch: %v", err)
			}
		}
	}
	b.ReportMetric(float64(k*len(in.batches)*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

func benchNative(b *testing.B, nseg int, sorted bool) {
	in := newBenchInput(b, nseg, sorted)
	d, err := sdk.NewDriver(mixstrategy.New(), discard{})
	if err != nil {
		b.Fatal(err)
	}
	bench(b, d, in, sorted)
}

// BenchmarkNativeUnsorted: one input, unsorted, 8192-row batches.
func BenchmarkNativeUnsorted(b *testing.B) { benchNative(b, 1, false) }

// BenchmarkNativeSortedMerge4: k-way merge of 4 sorted inputs, one
// 8192-row batch of each per round.
func BenchmarkNativeSortedMerge4(b *testing.B) { benchNative(b, 4, true) }

// BenchmarkWasmUnsorted: the unsorted case through mix.wasm under wazero
// (alloc, one copy into guest memory, compact_v1_batch, decisions read
// back and dropped), for the sandbox cost.
func BenchmarkWasmUnsorted(b *testing.B) { benchWasm(b, 1, false) }

// BenchmarkWasmSortedMerge4: the 4-input merge through mix.wasm.
func BenchmarkWasmSortedMerge4(b *testing.B) { benchWasm(b, 4, true) }

func benchWasm(b *testing.B, nseg int, sorted bool) {
	in := newBenchInput(b, nseg, sorted)
	g := sdktest.New(b, sdktest.Build(b, "github.com/compacthost/compacthost/plugins/mix"), sdktest.Config{MemoryLimitPages: 4096})
	g.Discard = true
	bench(b, guestTarget{g}, in, sorted)
}
