package segwrite_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Write five rows of a three-field collection to one output segment.
func Example() {
	dir, err := os.MkdirTemp("", "segwrite-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		log.Fatal(err)
	}
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
	}}
	ints := func(v ...int64) arrow.Array {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(v, nil)
		return b.NewArray()
	}
	cols := map[int64]arrow.Array{0: ints(1, 2, 3, 4, 5), 1: ints(500, 400, 300, 200, 100), 100: ints(10, 20, 30, 40, 50)}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()

	w, err := segwrite.New(segwrite.Config{Store: store, Root: "files", Schema: schema,
		CollectionID: 1, PartitionID: 2, Channel: "dml_0",
		SegmentIDs: &segwrite.IDRange{Next: 1000, End: 1010}, LogIDs: &segwrite.IDRange{Next: 5000, End: 6000},
		BloomCapacity: 5, Timestamp: 1})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Append(ctx, 0, cols, 1, 4); err != nil { // rows 1..4
		log.Fatal(err)
	}
	segs, err := w.Close(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range segs {
		fmt.Println("segment", s.SegmentID, "rows", s.NumOfRows)
		for _, fb := range s.InsertLogs {
			b := fb.Binlogs[0]
			fmt.Println(" ", b.LogPath, "entries", b.EntriesNum, "ts", b.TimestampFrom, b.TimestampTo)
		}
		fmt.Println(" ", s.Field2StatslogPaths[0].Binlogs[0].LogPath)
	}
	// Output:
	// segment 1000 rows 4
	//   files/insert_log/1/2/1000/0/5001 entries 4 ts 100 400
	//   files/insert_log/1/2/1000/1/5002 entries 4 ts 100 400
	//   files/insert_log/1/2/1000/100/5003 entries 4 ts 100 400
	//   files/stats_log/1/2/1000/100/5000
}
