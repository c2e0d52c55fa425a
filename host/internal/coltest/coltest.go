// Package coltest builds test data for the read and write stages' tests: a
// schema with a field of every DataType the storage codecs map to Arrow,
// and deterministic columns for any field.
package coltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// EveryTypeSchema has the pk (100, of pkType), then a field of every
// DataType that binlog.ArrowType maps, in DataType number order from 101
// (vectors of small, varying dims; the Int64 one a partition key, which
// storage v2's system group takes), then RowID and Timestamp, appended
// last as RootCoord appends them.
func EveryTypeSchema(pkType schemapb.DataType, nullable bool) *schemapb.CollectionSchema {
	s := &schemapb.CollectionSchema{Name: "every_type", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: pkType, IsPrimaryKey: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "32"}}},
	}}
	for _, v := range slices.Sorted(maps.Values(schemapb.DataType_value)) {
		dt := schemapb.DataType(v)
		f := &schemapb.FieldSchema{FieldID: 101 + int64(len(s.Fields)-1), Name: "f_" + dt.String(), DataType: dt,
			Nullable: nullable, ElementType: schemapb.DataType_Int32, IsPartitionKey: dt == schemapb.DataType_Int64,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(2 + int(dt)%7)}}}
		if _, err := binlog.ArrowType(f); err == nil {
			s.Fields = append(s.Fields, f)
		}
	}
	return WithSystemFields(s)
}

// WithSystemFields appends RowID (0) and Timestamp (1) to s's fields.
func WithSystemFields(s *schemapb.CollectionSchema) *schemapb.CollectionSchema {
	s.Fields = append(s.Fields,
		&schemapb.FieldSchema{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		&schemapb.FieldSchema{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64})
	return s
}

// Column builds rows [base, base+n) of f, the same values for the same
// rows every time. Nullable fields hold a null in every fourth row;
// Timestamp jumps around so a chunk's range is not its first and last
// row; strings are unique and vary in length. Columns without nulls carry
// no validity bitmap, as columns read from storage do not.
func Column(t testing.TB, f *schemapb.FieldSchema, base, n int) arrow.Array {
	t.Helper()
	typ, err := binlog.ArrowType(f)
	if err != nil {
		t.Fatal(err)
	}
	bld := array.NewBuilder(memory.DefaultAllocator, typ)
	defer bld.Release()
	id := f.GetFieldID()
	for r := base; r < base+n; r++ {
		if f.GetNullable() && r%4 == 1 {
			bld.AppendNull()
			continue
		}
		switch b := bld.(type) {
		case *array.Int64Builder:
			switch id {
			case 1:
				b.Append(463_000_000_000_000_000 + int64(r*7919%5003))
			case 0:
				b.Append(int64(r))
			default:
				b.Append(int64(r)*997 + id)
			}
		case *array.StringBuilder:
			b.Append(fmt.Sprintf("%d-%0*d", id, 1+r%9, r))
		case *array.BinaryBuilder:
			b.Append(bytes.Repeat([]byte{byte(r), byte(id)}, 1+r%5))
		case *array.FixedSizeBinaryBuilder:
			v := make([]byte, typ.(*arrow.FixedSizeBinaryType).ByteWidth)
			for i := range v {
				v[i] = byte(r*31 + i*7 + int(id))
			}
			if len(v) >= 2 {
				binary.LittleEndian.PutUint16(v, uint16(r))
			}
			b.Append(v)
		case *array.BooleanBuilder:
			b.Append(r%3 != 0)
		case *array.Int8Builder:
			b.Append(int8(r%120 - 60))
		case *array.Int16Builder:
			b.Append(int16(r * 3))
		case *array.Int32Builder:
			b.Append(int32(r * 11))
		case *array.Float32Builder:
			b.Append(float32(r) * 0.25)
		case *array.Float64Builder:
			b.Append(float64(r) / 9)
		default:
			t.Fatalf("field %d: no values for %T", id, b)
		}
	}
	a := bld.NewArray()
	if a.NullN() > 0 {
		return a
	}
	defer a.Release()
	bufs := append([]*memory.Buffer{nil}, a.Data().Buffers()[1:]...)
	d := array.NewData(a.DataType(), a.Len(), bufs, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}
