//go:build !wasip1

package sdk_test

import (
	"encoding/binary"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/abi/sdk/internal/evenpk"
)

// benchTask is one huge input segment fed 8192-row batches of pk+ts+size;
// patchFirst rewrites the batch header's first_row for batch i.
func benchTask(b *testing.B) (task, batch []byte, patchFirst func(buf []byte, i int)) {
	const rows = 8192
	task = taskJSON(b, 1, abi.CompactionMix, func(t *abi.Task) {
		t.Segments = []abi.Segment{{ID: 1, Role: abi.RoleInput, Rows: 1<<32 - 1}}
		t.MaxSize, t.BatchRows = 1<<30, rows
	})
	pks := make([]int64, rows)
	for i := range pks {
		pks[i] = int64(i)
	}
	batch = rowsBatch(b, 0, 0, pks)
	return task, batch, func(buf []byte, i int) { binary.LittleEndian.PutUint64(buf[16:], uint64(i)*rows) }
}

// BenchmarkNativeEvenPKBatch: one 8192-row batch through the native Driver.
func BenchmarkNativeEvenPKBatch(b *testing.B) {
	task, batch, patch := benchTask(b)
	d, err := sdk.NewDriver(evenpk.New(), new(sdk.Collector))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Begin(task); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	i := 0
	for b.Loop() {
		patch(batch, i)
		i++
		if err := d.Batch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWasmEvenPKBatch: the same batch through evenpk.wasm: alloc, one
// copy into guest memory, compact_v1_batch, decisions emitted back.
func BenchmarkWasmEvenPKBatch(b *testing.B) {
	task, batch, patch := benchTask(b)
	g := newGuest(b, 0)
	if st := g.Begin(task); st != abi.StatusOK {
		b.Fatalf("begin: %s %s", st, g.Failed)
	}
	b.SetBytes(int64(len(batch)))
	i := 0
	for b.Loop() {
		patch(batch, i)
		i++
		g.Decisions = abi.Decisions{Runs: g.Decisions.Runs[:0], Counters: g.Decisions.Counters[:0]}
		if st := g.Batch(batch); st != abi.StatusOK {
			b.Fatalf("batch: %s %s", st, g.Failed)
		}
	}
}
