package segwrite_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// Once the writer has flushed them, the input batches are garbage as soon as
// the caller drops them, though the writer (and its finished outputs) stays
// alive: a released Arrow array left in a slice's backing array still points
// at its buffers, and did keep a chunk of input per finished output.
func TestFlushedInputIsCollectable(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
	w, _ := newWriter(t, store, in, 40<<10, nil)
	in.feed(t, w, 250, func(row int) int { return row / 1500 }) // four outputs
	if _, err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var watched int
	var collected atomic.Int64
	for _, b := range in.batches {
		for _, c := range b.Columns {
			for _, buf := range c.Data().Buffers() {
				if buf != nil && buf.Len() > 0 {
					// the bytes, not the *memory.Buffer: a released array
					// drops the Buffer but keeps a slice of its bytes
					runtime.AddCleanup(&buf.Bytes()[0], func(int) { collected.Add(1) }, 0)
					watched++
				}
			}
		}
		b.Release()
	}
	in.batches = nil
	for i := 0; i < 20 && collected.Load() < int64(watched); i++ {
		runtime.GC()
		runtime.Gosched()
	}
	runtime.KeepAlive(w)
	if got := collected.Load(); got != int64(watched) {
		t.Fatalf("%d of %d input buffers were collected while the writer is alive", got, watched)
	}
}
