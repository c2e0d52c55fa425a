package binlog

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

// testField builds a field schema; dim 0 means no dim type param.
func testField(id int64, dt schemapb.DataType, dim int, nullable bool) *schemapb.FieldSchema {
	f := &schemapb.FieldSchema{FieldID: id, Name: fmt.Sprintf("f%d", id), DataType: dt, Nullable: nullable}
	if dim > 0 {
		f.TypeParams = []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(dim)}}
	}
	if dt == schemapb.DataType_Array {
		f.ElementType = schemapb.DataType_Int32
	}
	return f
}

// makeColumn builds n deterministic rows for f; when nulls is set every
// third row is null.
func makeColumn(t testing.TB, f *schemapb.FieldSchema, n int, nulls bool) arrow.Array {
	t.Helper()
	typ, err := ArrowType(f)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewBuilder(memory.DefaultAllocator, typ)
	defer b.Release()
	for i := 0; i < n; i++ {
		if nulls && i%3 == 1 {
			b.AppendNull()
			continue
		}
		switch bb := b.(type) {
		case *array.BooleanBuilder:
			bb.Append(i%2 == 0)
		case *array.Int8Builder:
			bb.Append(int8(i*7 - 60))
		case *array.Int16Builder:
			bb.Append(int16(i*301 - 2000))
		case *array.Int32Builder:
			bb.Append(int32(i*100003 - 7))
		case *array.Int64Builder:
			bb.Append(int64(i)*1_000_000_007 - 3)
		case *array.Float32Builder:
			bb.Append(float32(i) * 0.25)
		case *array.Float64Builder:
			bb.Append(float64(i)*1.5 - math.Pi)
		case *array.StringBuilder:
			bb.Append(fmt.Sprintf("row-%d-%s", i, string(rune('a'+i%26))))
		case *array.BinaryBuilder:
			bb.Append(binaryCell(t, f.GetDataType(), i))
		case *array.FixedSizeBinaryBuilder:
			w := typ.(*arrow.FixedSizeBinaryType).ByteWidth
			v := make([]byte, w)
			for j := range v {
				v[j] = byte(i*31 + j*7)
			}
			bb.Append(v)
		default:
			t.Fatalf("no generator for %T", b)
		}
	}
	return b.NewArray()
}

func binaryCell(t testing.TB, dt schemapb.DataType, i int) []byte {
	switch dt {
	case schemapb.DataType_JSON:
		return []byte(fmt.Sprintf(`{"i":%d,"s":"x%d"}`, i, i))
	case schemapb.DataType_SparseFloatVector:
		var out []byte
		for k := 0; k <= i%4; k++ {
			out = binary.LittleEndian.AppendUint32(out, uint32(i*10+k))
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(k)+0.5))
		}
		return out
	case schemapb.DataType_Array:
		b, err := proto.Marshal(&schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{
			IntData: &schemapb.IntArray{Data: []int32{int32(i), int32(-i), 7}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("no binary generator for %s", dt)
	return nil
}

// allTypes lists one field per supported DataType, with odd dims.
func allTypes(nullable bool) []*schemapb.FieldSchema {
	var fs []*schemapb.FieldSchema
	id := int64(100)
	add := func(dt schemapb.DataType, dim int) {
		fs = append(fs, testField(id, dt, dim, nullable))
		id++
	}
	for _, dt := range []schemapb.DataType{schemapb.DataType_Bool, schemapb.DataType_Int8, schemapb.DataType_Int16,
		schemapb.DataType_Int32, schemapb.DataType_Int64, schemapb.DataType_Float, schemapb.DataType_Double,
		schemapb.DataType_VarChar, schemapb.DataType_String, schemapb.DataType_Text, schemapb.DataType_Timestamptz,
		schemapb.DataType_JSON, schemapb.DataType_Array, schemapb.DataType_SparseFloatVector} {
		add(dt, 0)
	}
	add(schemapb.DataType_BinaryVector, 16)
	add(schemapb.DataType_BinaryVector, 12)
	add(schemapb.DataType_FloatVector, 3)
	add(schemapb.DataType_FloatVector, 128)
	add(schemapb.DataType_Float16Vector, 7)
	add(schemapb.DataType_BFloat16Vector, 5)
	add(schemapb.DataType_Int8Vector, 9)
	return fs
}
