package segwrite_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// An Array<Int64> field: chunks are flushed by Milvus's running size, which
// scales the field's Arrow bytes by 8 (serde.go, singleFieldRecordWriter.
// GetWrittenUncompressed), while memory_size and original_size record the
// unscaled bytes, as BinlogStreamWriter.Finalize does.
func TestArrayMemorySizeUnscaledChunksScaled(t *testing.T) {
	const (
		rows       = 200
		runRows    = 10
		chunkBytes = 4096
	)
	schema := &schemapb.CollectionSchema{Name: "arrays", Fields: []*schemapb.FieldSchema{
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "tags", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int64},
	}}
	// [1 2 3] as a ScalarField: oneof tag and length, LongArray tag and
	// length, three one-byte varints: 7 bytes.
	value, err := proto.Marshal(&schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{
		LongData: &schemapb.LongArray{Data: []int64{1, 2, 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(value) != 7 {
		t.Fatalf("the array value marshals to %d bytes, want 7", len(value))
	}
	cols := map[int64]arrow.Array{}
	for _, f := range schema.Fields[:3] {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		for i := range rows {
			b.Append(int64(463_000_000_000_000_000 + i))
		}
		cols[f.FieldID] = b.NewArray()
	}
	ab := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
	for range rows {
		ab.Append(value)
	}
	cols[101] = ab.NewArray()
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()

	store := objstoretest.Local(t)
	w, err := segwrite.New(segwrite.Config{Store: store, Root: "arr", Schema: schema, CollectionID: 1, PartitionID: 2,
		Channel: "ch", SegmentIDs: &segwrite.IDRange{Next: segBase, End: segBase + 10},
		LogIDs: &segwrite.IDRange{Next: logBase, End: logBase + 1000}, ChunkBytes: chunkBytes, BloomCapacity: rows})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for off := 0; off < rows; off += runRows {
		if err := w.Append(ctx, 0, cols, off, runRows); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A run of 10 rows adds 3 × 80 bytes of Int64 values and, for the
	// array, 11 offsets of 4 bytes and 10 values of 7 bytes: 114 bytes, 912
	// scaled (plus a 2-byte bitmap per slice when the builder made one).
	// Scaled, 4 runs (4,608 bytes or more) reach 4,096 and 3 (3,522 at most)
	// do not: chunks of 40 rows. Unscaled they would be 120 rows.
	const chunkRows = 40
	if len(segs) != 1 {
		t.Fatalf("%d outputs, want 1", len(segs))
	}
	for _, fb := range segs[0].InsertLogs {
		f := schema.Fields[0]
		for _, sf := range schema.Fields {
			if sf.FieldID == fb.FieldID {
				f = sf
			}
		}
		if len(fb.Binlogs) != rows/chunkRows {
			t.Fatalf("field %d: %d chunks, want %d of %d rows", fb.FieldID, len(fb.Binlogs), rows/chunkRows, chunkRows)
		}
		// A chunk of 40 rows without nulls: Int64 8 bytes a row; the array
		// 41 offsets of 4 bytes and 40 values of 7 bytes, 444 (3,552 when
		// it was scaled by 8).
		want := int64(chunkRows * 8)
		if f.FieldID == 101 {
			want = (chunkRows+1)*4 + chunkRows*7
		}
		for i, b := range fb.Binlogs {
			if b.EntriesNum != chunkRows {
				t.Fatalf("field %d chunk %d: entries_num %d, want %d", f.FieldID, i, b.EntriesNum, chunkRows)
			}
			got, desc := readBinlog(t, store, b.LogPath, f)
			got.Release()
			orig, err := desc.OriginalSize()
			if err != nil {
				t.Fatal(err)
			}
			if b.MemorySize != want || orig != want {
				t.Fatalf("field %d chunk %d: memory_size %d, original_size %d, want %d", f.FieldID, i, b.MemorySize, orig, want)
			}
		}
	}
}
