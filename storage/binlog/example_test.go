package binlog_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// Write an Int64 primary-key column as an insert binlog and stream it back.
func Example() {
	field := &schemapb.FieldSchema{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{10, 20, 30, 40, 50}, nil)
	col := b.NewArray()
	defer col.Release()

	var buf bytes.Buffer
	d := binlog.Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3}
	w, err := binlog.EncodeInsert(&buf, d, field, col, binlog.WriterOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("rows:", w.Rows, "memory size:", w.MemorySize)

	key := "files/insert_log/1/2/3/100/7"
	r, err := binlog.NewInsertReader(key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), field, 2)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	size, _ := r.Descriptor().OriginalSize()
	fmt.Println("original_size:", size, "nullable:", r.Descriptor().Nullable())
	for {
		batch, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(batch)
		batch.Release()
	}
	// Output:
	// rows: 5 memory size: 41
	// original_size: 41 nullable: false
	// [10 20]
	// [30 40]
	// [50]
}

// ReadFile parses only the container: descriptor and event locations.
func ExampleReadFile() {
	var buf bytes.Buffer
	d := binlog.Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3, FieldID: -1, PayloadType: schemapb.DataType_String}
	d.SetOriginalSize(3)
	ev := binlog.Event{Type: binlog.DeleteEvent, StartTimestamp: 100, EndTimestamp: 200}
	if _, err := binlog.WriteFile(&buf, d, ev, []byte("abc")); err != nil {
		panic(err)
	}
	f, err := binlog.ReadFile("delta", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(err)
	}
	e := f.Events[0]
	fmt.Println(e.Type, e.StartTimestamp, e.EndTimestamp, e.PayloadOffset, e.PayloadLength)
	// Output: DeleteEvent 100 200 139 3
}
