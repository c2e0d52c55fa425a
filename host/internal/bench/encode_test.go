package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/binlog"
)

// readColumns reads every row of the dataset's first segment and returns
// each field as one array.
func readColumns(t testing.TB, ds *Dataset) (*schemapb.CollectionSchema, map[int64]arrow.Array) {
	t.Helper()
	ctx := context.Background()
	store, err := ds.Store()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := filledPlan(ds.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := segread.Open(ctx, store, plan.GetSchema(), plan.GetSegmentBinlogs()[0], segread.Options{BatchRows: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	parts := map[int64][]arrow.Array{}
	for {
		b, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for id, c := range b.Columns {
			c.Retain()
			parts[id] = append(parts[id], c)
		}
		b.Release()
	}
	cols := map[int64]arrow.Array{}
	for id, ps := range parts {
		a, err := array.Concatenate(ps, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			p.Release()
		}
		cols[id] = a
	}
	return plan.GetSchema(), cols
}

// encodeInsertBuffered is the write path segwrite used before
// binlog.EncodeInsertChunks, kept as the baseline of the differential test
// and the benchmark: the chunk's pieces concatenated, Parquet through a
// buffered row group into a growing buffer, then the binlog copied into a
// second growing buffer.
func encodeInsertBuffered(d binlog.Descriptor, f *schemapb.FieldSchema, pieces []arrow.Array, opts binlog.WriterOptions) ([]byte, error) {
	col, err := array.Concatenate(pieces, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer col.Release()
	var payload bytes.Buffer
	sc := arrow.NewSchema([]arrow.Field{{Name: strconv.FormatInt(f.GetFieldID(), 10), Type: col.DataType(), Nullable: true}}, nil)
	fw, err := pqarrow.NewFileWriter(sc, &payload, parquetProps(f, opts), pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, int64(col.Len()))
	defer rec.Release()
	if err := fw.WriteBuffered(rec); err != nil {
		return nil, err
	}
	if err := fw.Close(); err != nil {
		return nil, err
	}
	d.FieldID, d.PayloadType = f.GetFieldID(), f.GetDataType()
	d.Extras = maps.Clone(d.Extras)
	d.SetOriginalSize(binlog.MemorySize(col))
	d.Extras[binlog.ExtraNullable] = f.GetNullable()
	var out bytes.Buffer
	if _, err := binlog.WriteFile(&out, d, binlog.Event{Type: binlog.InsertEvent, Timestamp: d.Timestamp, StartTimestamp: 1, EndTimestamp: 1}, payload.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// parquetProps mirrors binlog.WriterOptions' properties for the baseline.
func parquetProps(f *schemapb.FieldSchema, o binlog.WriterOptions) *parquet.WriterProperties {
	codec := compress.Codecs.Zstd
	if o.Compression != nil {
		codec = *o.Compression
	}
	props := []parquet.WriterProperty{parquet.WithCompression(codec), parquet.WithMaxRowGroupLength(1<<63 - 1)}
	if codec != compress.Codecs.Uncompressed {
		props = append(props, parquet.WithCompressionLevel(3))
	}
	if o.DisableDictionary || f.GetIsPrimaryKey() {
		props = append(props, parquet.WithDictionaryDefault(false))
	}
	return parquet.NewWriterProperties(props...)
}

// pieces cuts col into slices of n rows, as segwrite holds a chunk.
func pieces(col arrow.Array, n int) []arrow.Array {
	var ps []arrow.Array
	for lo := 0; lo < col.Len(); lo += n {
		ps = append(ps, array.NewSlice(col, int64(lo), int64(min(lo+n, col.Len()))))
	}
	return ps
}

// TestEncodeInsertChunksMatchesBuffered: for a column in one piece, the
// unbuffered, pre-sized, chunked encoder writes exactly the bytes of the old
// path, for every field type of the gen schema under Milvus's defaults,
// uncompressed vectors and dictionary off; for a column in many pieces
// (where Parquet pages may be cut elsewhere) it stores the same rows.
func TestEncodeInsertChunksMatchesBuffered(t *testing.T) {
	ds, err := Prepare(context.Background(), t.TempDir(), DataSpec{Bytes: 512 << 10, Dim: 32, Segments: 1, Regime: RegimeUniform, Deletes: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	schema, cols := readColumns(t, ds)
	desc := binlog.Descriptor{Timestamp: 7, CollectionID: 1, PartitionID: 2, SegmentID: 3, Extras: map[string]any{"x": "y"}}
	for _, vec := range []string{VectorsZstd3, VectorsRaw, VectorsNoDict} {
		fo, _ := FieldOptions(vec)
		for _, f := range schema.GetFields() {
			col := cols[f.GetFieldID()]
			want, err := encodeInsertBuffered(desc, f, []arrow.Array{col}, fo[f.GetFieldID()])
			if err != nil {
				t.Fatal(err)
			}
			e, err := binlog.EncodeInsertChunks(desc, f, []arrow.Array{col}, fo[f.GetFieldID()])
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(e.Reader())
			if !bytes.Equal(got, want) {
				t.Fatalf("%s field %d (%s): %d bytes, the buffered path %d", vec, f.GetFieldID(), f.GetDataType(), len(got), len(want))
			}
			e, err = binlog.EncodeInsertChunks(desc, f, pieces(col, 97), fo[f.GetFieldID()])
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(e.Reader())
			// one row group, read as one batch
			ir, err := binlog.NewInsertReader("chunked", bytes.NewReader(got), int64(len(got)), f, col.Len())
			if err != nil {
				t.Fatal(err)
			}
			back, err := ir.Next()
			ir.Close()
			if err != nil || !array.Equal(back, col) {
				t.Fatalf("%s field %d (%s): chunked encoding does not read back as the column (%v)", vec, f.GetFieldID(), f.GetDataType(), err)
			}
			back.Release()
		}
	}
}

// BenchmarkEncodeInsertVectors encodes one 64 MiB chunk of 768-dim vectors
// held as 8192-row pieces (what segwrite flushes) with the old buffered
// path and with binlog.EncodeInsertChunks.
//
//	go test ./host/internal/bench -run '^$' -bench EncodeInsertVectors -benchtime 5x -count 3
func BenchmarkEncodeInsertVectors(b *testing.B) {
	ds, err := Prepare(context.Background(), filepath.Join(os.TempDir(), "compacthost-bench"), DataSpec{Bytes: 64 << 20, Dim: 768, Segments: 1, Regime: RegimeNone})
	if err != nil {
		b.Fatal(err)
	}
	schema, cols := readColumns(b, ds)
	var f *schemapb.FieldSchema
	for _, x := range schema.GetFields() {
		if x.GetDataType() == schemapb.DataType_FloatVector {
			f = x
		}
	}
	col := cols[f.GetFieldID()]
	ps := pieces(col, 8192)
	desc := binlog.Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3, Extras: map[string]any{}}
	for _, vec := range []string{VectorsZstd3, VectorsRaw, VectorsNoDict} {
		fo, _ := FieldOptions(vec)
		opts := fo[f.GetFieldID()]
		b.Run(fmt.Sprintf("%s/buffered", vec), func(b *testing.B) {
			b.SetBytes(binlog.MemorySize(col))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeInsertBuffered(desc, f, ps, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/chunks", vec), func(b *testing.B) {
			b.SetBytes(binlog.MemorySize(col))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := binlog.EncodeInsertChunks(desc, f, ps, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
