package segwrite_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestFieldOptionsReadBack writes uncompressed vectors and small Parquet row
// groups for the title, then reads the output back through segread with a
// batch size that matches neither, as the next compaction would.
func TestFieldOptionsReadBack(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
	w, _ := newWriter(t, store, in, 100<<10, func(c *segwrite.Config) {
		c.FieldOptions = map[int64]binlog.WriterOptions{
			gen.VectorField: {Compression: &compress.Codecs.Uncompressed, DisableDictionary: true},
			gen.TitleField:  {MaxRowGroupRows: 97},
		}
	})
	in.feed(t, w, 1000, func(int) int { return 0 })
	ctx := context.Background()
	segs, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, fb := range segs[0].InsertLogs {
		if fb.FieldID == gen.VectorField {
			for _, b := range fb.Binlogs {
				if b.LogSize < b.MemorySize {
					t.Fatalf("uncompressed vector binlog of %d bytes holds %d bytes of vectors", b.LogSize, b.MemorySize)
				}
			}
		}
	}
	r, err := segread.Open(ctx, store, in.col.Schema, &datapb.CompactionSegmentBinlogs{SegmentID: segs[0].SegmentID,
		CollectionID: in.col.Config.CollectionID, PartitionID: in.col.Config.PartitionID,
		FieldBinlogs: segs[0].InsertLogs}, segread.Options{BatchRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parts := map[int64][]arrow.Array{}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for id, c := range b.Columns {
			parts[id] = append(parts[id], c)
		}
	}
	for id, ps := range parts {
		got, err := array.Concatenate(ps, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		if !array.Equal(got, in.all[id]) {
			t.Errorf("field %d differs after a write and read", id)
		}
		got.Release()
		for _, p := range ps {
			p.Release()
		}
	}
}
