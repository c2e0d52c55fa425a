package segwrite_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/coltest"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/gen"
)

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
			b.Columns[f.FieldID] = coltest.Column(t, f, base, n)
		}
		in.batches = append(in.batches, b)
		base += n
	}
	for _, f := range s.Fields {
		in.all[f.FieldID] = coltest.Column(t, f, 0, base)
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
