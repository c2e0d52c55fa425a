package binlog

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

// Every Array element type, three values and a null. The expected sizes
// are worked out by hand from Milvus 2.6's rule (internal/storage:
// BinlogStreamWriter.Finalize records singleFieldRecordWriter's
// writtenUncompressed, the Arrow bytes of the column, as memory_size and
// original_size; ExpansionRatio scales only GetWrittenUncompressed): a
// validity bitmap of 1 byte, 5 offsets of 4 bytes, and the protobuf
// ScalarField bytes of the three values. Each value is its oneof tag and
// length (2 bytes) around an inner message, itself the repeated field's tag
// and length (2 bytes, absent when empty) around the elements.
func TestMemorySizeArrays(t *testing.T) {
	// Integers are varints: 1, 2, 3 and 100 take a byte each, -100 ten.
	// [1 2 3]: 2+2+3 = 7; [100 -100]: 2+2+11 = 15; []: 2. Sum 24.
	ints := func(wrap func([]int64) *schemapb.ScalarField) []*schemapb.ScalarField {
		return []*schemapb.ScalarField{wrap([]int64{1, 2, 3}), wrap([]int64{100, -100}), wrap(nil)}
	}
	int32s := func(v []int64) *schemapb.ScalarField {
		d := make([]int32, len(v))
		for i, x := range v {
			d[i] = int32(x)
		}
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: d}}}
	}
	longs := func(v []int64) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}
	}
	tstz := func(v []int64) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_TimestamptzData{
			TimestamptzData: &schemapb.TimestamptzArray{Data: v}}}
	}
	floats := func(v ...float32) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}}
	}
	doubles := func(v ...float64) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: v}}}
	}
	bools := func(v ...bool) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: v}}}
	}
	strs := func(v ...string) *schemapb.ScalarField {
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}
	}
	cases := []struct {
		elem   schemapb.DataType
		values []*schemapb.ScalarField
		data   int64 // ScalarField bytes of the three values
		ratio  int64 // ExpansionRatio: scales the writer's running size only
	}{
		{schemapb.DataType_Int8, ints(int32s), 24, 1},
		{schemapb.DataType_Int16, ints(int32s), 24, 2},
		{schemapb.DataType_Int32, ints(int32s), 24, 4},
		{schemapb.DataType_Int64, ints(longs), 24, 8},
		{schemapb.DataType_Timestamptz, ints(tstz), 24, 8},
		// Packed fixed32: [1.5 2.5] 2+2+8 = 12; [0] 2+2+4 = 8; [] 2.
		{schemapb.DataType_Float, []*schemapb.ScalarField{floats(1.5, 2.5), floats(0), floats()}, 22, 1},
		// Packed fixed64: [1.5 2.5] 2+2+16 = 20; [0] 2+2+8 = 12; [] 2.
		{schemapb.DataType_Double, []*schemapb.ScalarField{doubles(1.5, 2.5), doubles(0), doubles()}, 34, 1},
		// A byte per bool: [t f t] 2+2+3 = 7; [f] 2+2+1 = 5; [] 2.
		{schemapb.DataType_Bool, []*schemapb.ScalarField{bools(true, false, true), bools(false), bools()}, 14, 1},
		// Strings are not packed, each has its own tag and length:
		// ["a" "bc"] 2+(3+4) = 9; [""] 2+2 = 4; [] 2.
		{schemapb.DataType_VarChar, []*schemapb.ScalarField{strs("a", "bc"), strs(""), strs()}, 15, 1},
	}
	for _, c := range cases {
		t.Run(c.elem.String(), func(t *testing.T) {
			f := testField(101, schemapb.DataType_Array, 0, true)
			f.ElementType = c.elem
			b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
			var data int64
			for _, v := range c.values {
				row, err := proto.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				data += int64(len(row))
				b.Append(row)
			}
			b.AppendNull()
			col := b.NewArray()
			defer col.Release()
			if data != c.data {
				t.Fatalf("the values marshal to %d bytes, the hand count says %d", data, c.data)
			}
			want := 1 + 5*4 + c.data
			if got := MemorySize(col); got != want {
				t.Errorf("MemorySize %d, want %d", got, want)
			}
			if got := ExpansionRatio(f); got != c.ratio {
				t.Errorf("ExpansionRatio %d, want %d", got, c.ratio)
			}
			var buf bytes.Buffer
			w, err := EncodeInsert(&buf, Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3}, f, col, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ir, err := NewInsertReader("k", bytes.NewReader(buf.Bytes()), int64(buf.Len()), f, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ir.Close()
			orig, err := ir.Descriptor().OriginalSize()
			if err != nil {
				t.Fatal(err)
			}
			if w.MemorySize != want || orig != want {
				t.Errorf("written memory_size %d, original_size %d, want %d", w.MemorySize, orig, want)
			}
			// As chunks the column counts as if concatenated: one offsets
			// array and one bitmap, whatever the split.
			head, tail := array.NewSlice(col, 0, 1), array.NewSlice(col, 1, 4)
			defer head.Release()
			defer tail.Release()
			e, err := EncodeInsertChunks(Descriptor{}, f, []arrow.Array{head, tail}, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if e.MemorySize != want {
				t.Errorf("memory_size of two chunks %d, want %d", e.MemorySize, want)
			}
		})
	}
}

// Fields other than Array are never scaled.
func TestExpansionRatioOtherTypes(t *testing.T) {
	for _, f := range allTypes(false) {
		if f.GetDataType() == schemapb.DataType_Array {
			continue
		}
		if r := ExpansionRatio(f); r != 1 {
			t.Errorf("%s: ExpansionRatio %d, want 1", f.GetDataType(), r)
		}
	}
}
