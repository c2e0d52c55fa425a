package packed_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/packed"
)

// Split a schema into Milvus' default column groups, write the system
// group's file and read the pk back by field ID.
func Example() {
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true},
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
	}}
	groups, err := packed.SplitGroups(schema, packed.DefaultSplitPolicy(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("group_field_id_list:", packed.FormatGroupFieldIDList(groups))

	fields := packed.AllFields(schema)
	w, err := packed.NewWriter(groups, 0, fields, packed.WriterOptions{})
	if err != nil {
		panic(err)
	}
	col := func(vals ...int64) arrow.Array {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewArray()
	}
	cols := []arrow.Array{col(10, 20, 30), col(1, 2, 3), col(449, 450, 451)} // pk, RowID, Timestamp
	if err := w.Write(cols); err != nil {
		panic(err)
	}
	for _, c := range cols {
		c.Release()
	}
	b, info, err := w.Finish()
	if err != nil {
		panic(err)
	}
	fmt.Println("row_group_metadata:", packed.FormatRowGroupMetadata(info.RowGroups))

	key := "files/insert_log/1/2/3/0/7"
	r, err := packed.NewReader(key, bytes.NewReader(b), int64(len(b)), fields, packed.ReaderOptions{Fields: []int64{100}})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	fmt.Println("file columns:", r.FieldIDs())
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println("pk:", rec.Column(0))
		rec.Release()
	}
	// Output:
	// group_field_id_list: 100,0,1;101
	// row_group_metadata: 75|3|0
	// file columns: [100 0 1]
	// pk: [10 20 30]
}
