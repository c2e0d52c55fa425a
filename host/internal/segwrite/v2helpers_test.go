package segwrite_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
)

// v2Schema has the pk (100), then a field of every DataType the binlog and
// packed writers map to Arrow, in DataType number order from 101 (the Int64
// one a partition key, which the system group takes), then RowID and
// Timestamp, appended last as RootCoord appends them.
func v2Schema(pkType schemapb.DataType, nullable bool) *schemapb.CollectionSchema {
	s := &schemapb.CollectionSchema{Name: "every_type", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: pkType, IsPrimaryKey: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "32"}}},
	}}
	var types []schemapb.DataType
	for n := range schemapb.DataType_name {
		types = append(types, schemapb.DataType(n))
	}
	slices.Sort(types)
	for _, dt := range types {
		f := &schemapb.FieldSchema{FieldID: 101 + int64(len(s.Fields)-1), Name: "f_" + dt.String(), DataType: dt,
			Nullable: nullable, ElementType: schemapb.DataType_Int32, IsPartitionKey: dt == schemapb.DataType_Int64,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(2 + int(dt)%7)}}}
		if _, err := binlog.ArrowType(f); err == nil {
			s.Fields = append(s.Fields, f)
		}
	}
	s.Fields = append(s.Fields,
		&schemapb.FieldSchema{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		&schemapb.FieldSchema{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64})
	return s
}

// v2Value builds rows [base, base+n) of f. Nullable fields hold a null in
// every fourth row; Timestamp jumps around so a chunk's range is not its
// first and last row. Columns without nulls carry no validity bitmap, as
// columns read from storage do not.
func v2Value(t testing.TB, f *schemapb.FieldSchema, base, n int) arrow.Array {
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
			b.Append(fmt.Sprintf("%d-%0*d", id, 1+r%9, r)) // unique, varying length
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
			b.Append(int8(r % 120))
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

// v2Input is an input of the schema's generated rows in batches of the
// given sizes (v2Value's rows, for in.feed and checkStats).
func v2Input(t testing.TB, s *schemapb.CollectionSchema, sizes ...int) *input {
	t.Helper()
	in := &input{all: map[int64]arrow.Array{}, col: &gen.Collection{Schema: s,
		Config: gen.Config{CollectionID: 451, PartitionID: 452, Channel: "ch-v2"}}}
	base := 0
	for _, n := range sizes {
		b := &segread.Batch{FirstRow: int64(base), Rows: n, Columns: map[int64]arrow.Array{}}
		for _, f := range s.Fields {
			b.Columns[f.FieldID] = v2Value(t, f, base, n)
		}
		in.batches = append(in.batches, b)
		base += n
	}
	for _, f := range s.Fields {
		in.all[f.FieldID] = v2Value(t, f, 0, base)
	}
	in.releaseAtCleanup(t)
	return in
}

// parquetFile is what arrow-go's plain Parquet and pqarrow readers see in
// a file: nothing here knows of Milvus or compact-host.
type parquetFile struct {
	names     []string
	fieldIDs  []int32
	required  []bool
	kv        [][2]string // footer key-value metadata, in order
	rowGroups []int64     // rows per Parquet row group
	codecsOK  bool        // every column chunk is ZSTD
	cols      []arrow.Array
}

func readParquet(t testing.TB, key string, data []byte) parquetFile {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	var out parquetFile
	root := md.Schema.Root()
	for i := range root.NumFields() {
		n := root.Field(i)
		out.names = append(out.names, n.Name())
		out.fieldIDs = append(out.fieldIDs, n.FieldID())
		out.required = append(out.required, n.RepetitionType() == parquet.Repetitions.Required)
	}
	kv := md.KeyValueMetadata()
	for i, k := range kv.Keys() {
		out.kv = append(out.kv, [2]string{k, kv.Values()[i]})
	}
	out.codecsOK = true
	for rg := range pf.NumRowGroups() {
		rgm := md.RowGroup(rg)
		out.rowGroups = append(out.rowGroups, rgm.NumRows())
		for c := range rgm.NumColumns() {
			cc, err := rgm.ColumnChunk(c)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			out.codecsOK = out.codecsOK && cc.Compression() == compress.Codecs.Zstd
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 100}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	defer tbl.Release()
	for i := range int(tbl.NumCols()) {
		c, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out.cols = append(out.cols, c)
	}
	t.Cleanup(func() {
		for _, c := range out.cols {
			c.Release()
		}
	})
	return out
}
