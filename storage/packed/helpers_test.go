package packed

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// allTypes are the DataTypes storage/binlog maps to Arrow, each with the
// dim its vectors get in tests.
var allTypes = []struct {
	t   schemapb.DataType
	dim int
}{
	{schemapb.DataType_Bool, 0}, {schemapb.DataType_Int8, 0}, {schemapb.DataType_Int16, 0},
	{schemapb.DataType_Int32, 0}, {schemapb.DataType_Int64, 0}, {schemapb.DataType_Timestamptz, 0},
	{schemapb.DataType_Float, 0}, {schemapb.DataType_Double, 0}, {schemapb.DataType_String, 0},
	{schemapb.DataType_VarChar, 0}, {schemapb.DataType_Text, 0}, {schemapb.DataType_Array, 0},
	{schemapb.DataType_JSON, 0}, {schemapb.DataType_SparseFloatVector, 0},
	{schemapb.DataType_BinaryVector, 16}, {schemapb.DataType_FloatVector, 4},
	{schemapb.DataType_Float16Vector, 4}, {schemapb.DataType_BFloat16Vector, 4},
	{schemapb.DataType_Int8Vector, 8},
}

func field(id int64, name string, t schemapb.DataType, dim int, nullable bool) *schemapb.FieldSchema {
	f := &schemapb.FieldSchema{FieldID: id, Name: name, DataType: t, Nullable: nullable}
	if dim > 0 {
		f.TypeParams = []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(dim)}}
	}
	return f
}

// fullSchema has a pk of pkType (field 100), one field per allTypes entry
// (101...), then RowID and Timestamp, as RootCoord appends them.
func fullSchema(pkType schemapb.DataType, nullable bool) *schemapb.CollectionSchema {
	pk := field(100, "pk", pkType, 0, false)
	pk.IsPrimaryKey = true
	if pkType == schemapb.DataType_VarChar {
		pk.TypeParams = []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}
	}
	s := &schemapb.CollectionSchema{Name: "all", Fields: []*schemapb.FieldSchema{pk}}
	for i, at := range allTypes {
		s.Fields = append(s.Fields, field(int64(101+i), "f_"+at.t.String(), at.t, at.dim, nullable))
	}
	s.Fields = append(s.Fields, field(0, "RowID", schemapb.DataType_Int64, 0, false),
		field(1, "Timestamp", schemapb.DataType_Int64, 0, false))
	return s
}

// column builds n rows for f starting at row base; a nullable field gets a
// null in every fourth row.
func column(t testing.TB, f *schemapb.FieldSchema, base, n int) arrow.Array {
	t.Helper()
	at, err := ArrowField(f)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewBuilder(memory.DefaultAllocator, at.Type)
	defer b.Release()
	for r := base; r < base+n; r++ {
		if f.GetNullable() && r%4 == 1 {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.BooleanBuilder:
			b.Append(r%3 == 0)
		case *array.Int8Builder:
			b.Append(int8(r))
		case *array.Int16Builder:
			b.Append(int16(r * 7))
		case *array.Int32Builder:
			b.Append(int32(r * 31))
		case *array.Int64Builder:
			b.Append(int64(r)*1000 + f.GetFieldID())
		case *array.Float32Builder:
			b.Append(float32(r) / 3)
		case *array.Float64Builder:
			b.Append(float64(r) / 7)
		case *array.StringBuilder:
			b.Append(fmt.Sprintf("%s-%d", f.GetName(), r))
		case *array.BinaryBuilder:
			b.Append([]byte(fmt.Sprintf(`{"row":%d}`, r)))
		case *array.FixedSizeBinaryBuilder:
			v := make([]byte, at.Type.(*arrow.FixedSizeBinaryType).ByteWidth)
			for i := range v {
				v[i] = byte(r*13 + i)
			}
			if len(v) >= 4 { // unique per row
				binary.LittleEndian.PutUint32(v, uint32(r))
			}
			b.Append(v)
		default:
			t.Fatalf("no generator for %T", b)
		}
	}
	return b.NewArray()
}

// groupColumns builds rows [base, base+n) of the group's fields.
func groupColumns(t testing.TB, fields []*schemapb.FieldSchema, g Group, base, n int) []arrow.Array {
	byID := map[int64]*schemapb.FieldSchema{}
	for _, f := range fields {
		byID[f.GetFieldID()] = f
	}
	cols := make([]arrow.Array, len(g.Fields))
	for i, id := range g.Fields {
		cols[i] = column(t, byID[id], base, n)
	}
	return cols
}

func release(cols []arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}

// writeGroup writes the group's file from batches of the given sizes.
func writeGroup(t testing.TB, groups []Group, g Group, fields []*schemapb.FieldSchema, opts WriterOptions, batches ...int) ([]byte, Info) {
	t.Helper()
	w, err := NewWriter(groups, g.ID, fields, opts)
	if err != nil {
		t.Fatal(err)
	}
	base := 0
	for _, n := range batches {
		cols := groupColumns(t, fields, g, base, n)
		if err := w.Write(cols); err != nil {
			t.Fatal(err)
		}
		release(cols)
		base += n
	}
	b, info, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// readAll reads every batch of the file and returns its columns concatenated.
func readAll(t testing.TB, key string, b []byte, fields []*schemapb.FieldSchema, opts ReaderOptions) ([]arrow.Array, *Reader) {
	t.Helper()
	rd, err := NewReader(key, bytes.NewReader(b), int64(len(b)), fields, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var chunks [][]arrow.Array
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range rec.NumCols() {
			if int(i) >= len(chunks) {
				chunks = append(chunks, nil)
			}
			c := rec.Column(int(i))
			c.Retain()
			chunks[i] = append(chunks[i], c)
		}
		rec.Release()
	}
	out := make([]arrow.Array, len(chunks))
	for i, cs := range chunks {
		c, err := array.Concatenate(cs, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		release(cs)
		out[i] = c
	}
	return out, rd
}

// legacyRowGroupSize encodes sizes as the pre-release row_group_size value.
func legacyRowGroupSize(sizes ...int64) string {
	b := make([]byte, 0, 8*len(sizes))
	for _, s := range sizes {
		b = binary.LittleEndian.AppendUint64(b, uint64(s))
	}
	return string(b)
}
