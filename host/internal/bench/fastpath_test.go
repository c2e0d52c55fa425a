package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
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
	plan := proto.Clone(ds.MixPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(host.DefaultRootPath, plan); err != nil {
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

// TestEncodeInsertSizedSameBytes: the pre-sized encoder writes exactly the
// bytes of binlog.EncodeInsert for every field type of the gen schema,
// under Milvus's defaults, uncompressed vectors and dictionary off.
func TestEncodeInsertSizedSameBytes(t *testing.T) {
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
			var plain bytes.Buffer
			wantW, err := binlog.EncodeInsert(&plain, desc, f, col, fo[f.GetFieldID()])
			if err != nil {
				t.Fatal(err)
			}
			got, gotW, err := EncodeInsertSized(desc, f, col, fo[f.GetFieldID()])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain.Bytes()) || gotW != wantW {
				t.Fatalf("%s field %d (%s): sized encoder differs: %d bytes %+v, plain %d bytes %+v", vec, f.GetFieldID(), f.GetDataType(), len(got), gotW, plain.Len(), wantW)
			}
		}
	}
	if _, _, err := EncodeInsertSized(desc, schema.GetFields()[0], cols[gen.VectorField], binlog.WriterOptions{}); err == nil {
		t.Fatal("a column of the wrong type was encoded")
	}
}

// BenchmarkEncodeInsertVectors encodes one 64 MiB chunk of 768-dim vectors
// (what segwrite flushes) with the plain and the pre-sized encoder.
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
	desc := binlog.Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3, Extras: map[string]any{}}
	for _, vec := range []string{VectorsZstd3, VectorsRaw, VectorsNoDict} {
		fo, _ := FieldOptions(vec)
		opts := fo[f.GetFieldID()]
		b.Run(fmt.Sprintf("%s/plain", vec), func(b *testing.B) {
			b.SetBytes(binlog.MemorySize(col, f))
			b.ReportAllocs()
			for b.Loop() {
				var buf bytes.Buffer
				if _, err := binlog.EncodeInsert(&buf, desc, f, col, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/sized", vec), func(b *testing.B) {
			b.SetBytes(binlog.MemorySize(col, f))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := EncodeInsertSized(desc, f, col, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
