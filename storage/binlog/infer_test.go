package binlog

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func TestFieldFromFile(t *testing.T) {
	cases := []struct {
		typ schemapb.DataType
		dim int
	}{
		{schemapb.DataType_FloatVector, 5},
		{schemapb.DataType_BinaryVector, 16},
		{schemapb.DataType_Float16Vector, 3},
		{schemapb.DataType_Int8Vector, 7},
		{schemapb.DataType_Int64, 0},
	}
	for _, c := range cases {
		field := &schemapb.FieldSchema{FieldID: 101, DataType: c.typ, Nullable: c.dim == 0}
		if c.dim > 0 {
			field.TypeParams = []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(c.dim)}}
		}
		typ, err := ArrowType(field)
		if err != nil {
			t.Fatal(err)
		}
		var col arrow.Array
		if fsb, ok := typ.(*arrow.FixedSizeBinaryType); ok {
			b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, fsb)
			b.Append(make([]byte, fsb.ByteWidth))
			col = b.NewArray()
		} else {
			b := array.NewInt64Builder(memory.DefaultAllocator)
			b.AppendValues([]int64{1, 0}, []bool{true, false})
			col = b.NewArray()
		}
		var buf bytes.Buffer
		d := Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3, FieldID: 101, PayloadType: c.typ}
		if _, err := EncodeInsert(&buf, d, field, col, WriterOptions{}); err != nil {
			t.Fatal(err)
		}
		col.Release()
		f, err := ReadFile("k", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := FieldFromFile(f, bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if got.DataType != c.typ || got.FieldID != 101 || got.Nullable != field.Nullable {
			t.Fatalf("%s: inferred %v", c.typ, got)
		}
		if c.dim > 0 {
			if d, err := Dim(got); err != nil || d != c.dim {
				t.Fatalf("%s: inferred dim %d (%v), want %d", c.typ, d, err, c.dim)
			}
		}
	}
}
