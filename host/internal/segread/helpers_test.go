package segread_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// smallConfig is a gen collection with several chunks per segment.
func smallConfig(pk schemapb.DataType) gen.Config {
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 2, 2500, 1000, 8
	c.PKType = pk
	c.L0Segments = 0
	return c
}

func generate(t testing.TB, store objstore.Store, cfg gen.Config) *gen.Collection {
	t.Helper()
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return col
}

// directRead reads every binlog of field f of seg in logID order with
// binlog.NewInsertReader and concatenates the rows.
func directRead(t testing.TB, store objstore.Store, seg *datapb.CompactionSegmentBinlogs, f *schemapb.FieldSchema) arrow.Array {
	t.Helper()
	var parts []arrow.Array
	for _, fb := range seg.FieldBinlogs {
		if fb.FieldID != f.FieldID {
			continue
		}
		for _, b := range fb.Binlogs {
			parts = append(parts, readBinlog(t, store, b.LogPath, f)...)
		}
	}
	return concat(t, parts)
}

func readBinlog(t testing.TB, store objstore.Store, key string, f *schemapb.FieldSchema) []arrow.Array {
	t.Helper()
	data := objstoretest.ReadAll(t, store, key)
	ir, err := binlog.NewInsertReader(key, bytes.NewReader(data), int64(len(data)), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	var out []arrow.Array
	for {
		a, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
}

func concat(t testing.TB, parts []arrow.Array) arrow.Array {
	t.Helper()
	a, err := array.Concatenate(parts, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		p.Release()
	}
	return a
}

// readAll reads the whole segment through a Reader and returns every
// field's rows concatenated, checking batch bookkeeping on the way.
func readAll(t *testing.T, store objstore.Store, schema *schemapb.CollectionSchema, seg *datapb.CompactionSegmentBinlogs, opts segread.Options) map[int64]arrow.Array {
	t.Helper()
	ctx := context.Background()
	r, err := segread.Open(ctx, store, schema, seg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parts := map[int64][]arrow.Array{}
	var rows int64
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.FirstRow != rows {
			t.Fatalf("batch FirstRow %d, want %d", b.FirstRow, rows)
		}
		if b.Rows <= 0 || (opts.BatchRows > 0 && b.Rows > opts.BatchRows) {
			t.Fatalf("batch of %d rows with BatchRows %d", b.Rows, opts.BatchRows)
		}
		wantCols := len(schema.Fields)
		if len(opts.Fields) > 0 {
			wantCols = len(opts.Fields)
		}
		if len(b.Columns) != wantCols || len(b.RowSizes) != b.Rows {
			t.Fatalf("batch has %d columns and %d row sizes, want %d and %d", len(b.Columns), len(b.RowSizes), wantCols, b.Rows)
		}
		var sum int64
		for _, s := range b.RowSizes {
			sum += int64(s)
		}
		if sum != b.Bytes {
			t.Fatalf("batch Bytes %d, sum of row sizes %d", b.Bytes, sum)
		}
		for id, c := range b.Columns {
			if c.Len() != b.Rows {
				t.Fatalf("field %d has %d rows in a batch of %d", id, c.Len(), b.Rows)
			}
			c.Retain()
			parts[id] = append(parts[id], c)
		}
		b.Release()
		rows += int64(b.Rows)
	}
	if rows != r.NumRows() {
		t.Fatalf("read %d rows, NumRows %d", rows, r.NumRows())
	}
	out := map[int64]arrow.Array{}
	for id, ps := range parts {
		out[id] = concat(t, ps)
	}
	return out
}

func releaseAll(cols map[int64]arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}

// cloneSeg deep-copies segment metadata so a test can damage it.
func cloneSeg(seg *datapb.CompactionSegmentBinlogs) *datapb.CompactionSegmentBinlogs {
	return proto.Clone(seg).(*datapb.CompactionSegmentBinlogs)
}

func fieldBinlog(seg *datapb.CompactionSegmentBinlogs, id int64) *datapb.FieldBinlog {
	for _, fb := range seg.FieldBinlogs {
		if fb.FieldID == id {
			return fb
		}
	}
	return nil
}

func field(schema *schemapb.CollectionSchema, id int64) *schemapb.FieldSchema {
	for _, f := range schema.Fields {
		if f.FieldID == id {
			return f
		}
	}
	return nil
}

func cloneSchema(s *schemapb.CollectionSchema) *schemapb.CollectionSchema {
	return proto.Clone(s).(*schemapb.CollectionSchema)
}

func binaryOf(vals []string, valid []bool) arrow.Array {
	b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
	defer b.Release()
	for i, v := range vals {
		if valid[i] {
			b.AppendString(v)
		} else {
			b.AppendNull()
		}
	}
	return b.NewArray()
}

// firstError reads r until Next fails and returns that error; reading to
// the end is a test failure.
func firstError(t *testing.T, ctx context.Context, r *segread.Reader) error {
	t.Helper()
	for {
		b, err := r.Next(ctx)
		if err == nil {
			b.Release()
			continue
		}
		if errors.Is(err, io.EOF) {
			t.Fatal("read to the end without an error")
		}
		return err
	}
}

// wantAll fails t for every fragment err's text lacks (all of them when err
// is nil).
func wantAll(t *testing.T, err error, frags ...string) {
	t.Helper()
	for _, w := range frags {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}
