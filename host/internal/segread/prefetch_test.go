package segread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestPrefetchBound: Open fetches nothing; while a batch of chunk c is
// being consumed, no object of a chunk beyond c+Prefetch has been requested
// (the memory bound); every object is fetched exactly once. Both storage
// versions.
func TestPrefetchBound(t *testing.T) {
	for _, version := range []int64{0, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { testPrefetchBound(t, version) })
	}
}

func testPrefetchBound(t *testing.T, version int64) {
	base := objstoretest.Local(t)
	cfg := smallConfig(schemapb.DataType_Int64)
	cfg.RowsPerSegment, cfg.ChunkRows, cfg.StorageVersion = 3000, 500, version // 6 chunks
	col := generate(t, base, cfg)
	seg := col.Segments[0]
	chunkOf := map[string]int{}
	for _, fb := range seg.FieldBinlogs {
		for i, b := range fb.Binlogs {
			chunkOf[b.LogPath] = i
		}
	}
	for _, prefetch := range []int{1, 2} {
		store := &recordingStore{Store: base}
		ctx := context.Background()
		r, err := segread.Open(ctx, store, col.Schema, seg, segread.Options{BatchRows: 200, Prefetch: prefetch})
		if err != nil {
			t.Fatal(err)
		}
		if len(store.keys) != 0 {
			t.Fatalf("Open fetched %d objects", len(store.keys))
		}
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			cur := int(b.FirstRow) / cfg.ChunkRows
			store.mu.Lock()
			for _, k := range store.keys {
				if chunkOf[k] > cur+prefetch {
					t.Fatalf("prefetch %d: chunk %d requested while chunk %d is read", prefetch, chunkOf[k], cur)
				}
			}
			store.mu.Unlock()
			b.Release()
		}
		r.Close()
		if len(store.keys) != len(chunkOf) {
			t.Fatalf("prefetch %d: %d Gets for %d binlogs", prefetch, len(store.keys), len(chunkOf))
		}
	}
}
