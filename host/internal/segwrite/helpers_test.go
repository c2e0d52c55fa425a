package segwrite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

const (
	segBase = int64(470_000_000_000_000_000)
	logBase = int64(480_000_000_000_000_000)
)

func smallConfig(pk schemapb.DataType) gen.Config {
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 2, 2500, 1000, 8
	c.PKType = pk
	c.L0Segments = 0
	return c
}

// input is every row of a gen collection, read through segread, as batches
// (in segment and row order) plus the whole columns for comparisons.
type input struct {
	col     *gen.Collection
	batches []*segread.Batch
	all     map[int64]arrow.Array
}

func loadInput(t testing.TB, store objstore.Store, cfg gen.Config, batchRows int) *input {
	t.Helper()
	ctx := context.Background()
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := &input{col: col, all: map[int64]arrow.Array{}}
	parts := map[int64][]arrow.Array{}
	for _, seg := range col.Segments {
		r, err := segread.Open(ctx, store, col.Schema, seg, segread.Options{BatchRows: batchRows})
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			in.batches = append(in.batches, b)
			for id, c := range b.Columns {
				parts[id] = append(parts[id], c)
			}
		}
		r.Close()
	}
	for id, ps := range parts {
		a, err := array.Concatenate(ps, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		in.all[id] = a
	}
	in.releaseAtCleanup(t)
	return in
}

// releaseAtCleanup releases the input's columns when the test ends.
func (in *input) releaseAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		for _, b := range in.batches {
			b.Release()
		}
		for _, a := range in.all {
			a.Release()
		}
	})
}

func (in *input) rows() int {
	return in.all[gen.PKField].Len()
}

// feed appends every input row in runs of at most run rows; row i goes to
// output outputOf(i), which must not decrease.
func (in *input) feed(t testing.TB, w *segwrite.Writer, run int, outputOf func(row int) int) {
	t.Helper()
	ctx := context.Background()
	row := 0
	for _, b := range in.batches {
		for off := 0; off < b.Rows; {
			out := outputOf(row)
			n := min(run, b.Rows-off)
			for k := 1; k < n; k++ { // a run never crosses an output change
				if outputOf(row+k) != out {
					n = k
					break
				}
			}
			if err := w.Append(ctx, out, b.Columns, off, n); err != nil {
				t.Fatal(err)
			}
			off += n
			row += n
		}
	}
}

// readBinlog decodes one insert binlog with binlog.NewInsertReader.
func readBinlog(t testing.TB, store objstore.Store, key string, f *schemapb.FieldSchema) (arrow.Array, binlog.Descriptor) {
	t.Helper()
	data := objstoretest.ReadAll(t, store, key)
	ir, err := binlog.NewInsertReader(key, bytes.NewReader(data), int64(len(data)), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	var parts []arrow.Array
	for {
		a, err := ir.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, a)
	}
	a, err := array.Concatenate(parts, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		p.Release()
	}
	return a, ir.Descriptor()
}

func listKeys(t testing.TB, store objstore.Store, prefix string) []string {
	t.Helper()
	objs, err := store.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

func newWriter(t testing.TB, store objstore.Store, in *input, chunkBytes int64, mutate func(*segwrite.Config)) (*segwrite.Writer, segwrite.Config) {
	t.Helper()
	c := in.col.Config
	cfg := segwrite.Config{
		Store: store, Root: "out", Schema: in.col.Schema, CollectionID: c.CollectionID, PartitionID: c.PartitionID,
		Channel: c.Channel, SegmentIDs: &segwrite.IDRange{Next: segBase, End: segBase + 100},
		LogIDs: &segwrite.IDRange{Next: logBase, End: logBase + 10_000}, ChunkBytes: chunkBytes,
		BloomCapacity: in.rows(), Timestamp: 463_000_000_000_000_000,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := segwrite.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w, cfg
}

// failingStore fails every Create after the first n, with an error
// wrapping fail (default: a plain error).
type failingStore struct {
	objstore.Store
	n    atomic.Int64
	fail error
}

func (s *failingStore) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.n.Add(-1) < 0 {
		if s.fail != nil {
			return fmt.Errorf("injected put failure for %s: %w", key, s.fail)
		}
		return errors.New("injected put failure for " + key)
	}
	return s.Store.Create(ctx, key, r, size)
}
