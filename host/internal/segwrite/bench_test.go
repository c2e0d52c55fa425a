package segwrite_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// benchInput is a gen collection with 768-dim vectors (2 segments x 20,000
// rows), read once per test binary into batches of 1024 rows.
var benchInput struct {
	once  sync.Once
	dir   string
	store objstore.Store
	in    *input
}

func loadBench(b *testing.B) (objstore.Store, *input) {
	b.Helper()
	benchInput.once.Do(func() {
		dir, err := os.MkdirTemp("", "segwrite-bench")
		if err != nil {
			b.Fatal(err)
		}
		benchInput.dir = dir
		s, err := objstore.NewLocal(dir)
		if err != nil {
			b.Fatal(err)
		}
		c := gen.DefaultConfig()
		c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 2, 20000, 5000, 768
		c.L0Segments = 0
		benchInput.store, benchInput.in = s, loadInput(noCleanup{b}, s, c, 1024)
	})
	if benchInput.in == nil {
		b.Fatal("bench input failed earlier")
	}
	return benchInput.store, benchInput.in
}

// noCleanup keeps loadInput's batches alive for every benchmark.
type noCleanup struct{ testing.TB }

func (noCleanup) Cleanup(func()) {}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchInput.dir != "" {
		os.RemoveAll(benchInput.dir)
	}
	os.Exit(code)
}

// BenchmarkWrite appends every row (whole 1024-row batches) to one output
// with 64 MiB chunks and closes it; MB/s counts the uncompressed rows.
//
//	go test ./host/internal/segwrite -run XXX -bench Write -benchtime 3x
func BenchmarkWrite(b *testing.B) {
	local, in := loadBench(b)
	raw := map[int64]binlog.WriterOptions{gen.VectorField: {Compression: &compress.Codecs.Uncompressed, DisableDictionary: true}}
	for _, backend := range []string{"local", "minio"} {
		for _, bc := range []struct {
			name string
			opts map[int64]binlog.WriterOptions
		}{{"zstd3", nil}, {"vectors-uncompressed", raw}} {
			b.Run(backend+"/"+bc.name, func(b *testing.B) {
				store := local
				if backend == "minio" {
					store = objstoretest.MinIO(b) // skipped unless configured (./scripts/test.sh)
				}
				benchWrite(b, store, in, bc.name, bc.opts)
			})
		}
	}
}

func benchWrite(b *testing.B, store objstore.Store, in *input, name string, opts map[int64]binlog.WriterOptions) {
	ctx := context.Background()
	b.SetBytes(in.col.InputMemorySize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		w, _ := newWriter(b, store, in, segwrite.DefaultChunkBytes, func(c *segwrite.Config) {
			c.Root = fmt.Sprintf("bench-%s-%d", name, i)
			c.FieldOptions = opts
		})
		for _, batch := range in.batches {
			if err := w.Append(ctx, 0, batch.Columns, 0, batch.Rows); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, written := w.Stats()
		b.ReportMetric(float64(written)/float64(in.col.InputMemorySize), "stored/raw")
		if err := w.Abort(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkJoin compares the two ways of gathering appended runs into a
// chunk column: keeping slices and concatenating at flush (what the writer
// does) or copying each run into an Arrow builder as it arrives.
func BenchmarkJoin(b *testing.B) {
	_, in := loadBench(b)
	const run = 100
	for _, id := range []int64{gen.VectorField, gen.TitleField} {
		var rows int64
		var size int64
		for _, batch := range in.batches {
			rows += int64(batch.Rows)
			size += binlog.MemorySize(batch.Columns[id])
		}
		b.Run(fmt.Sprintf("field%d/slices+concatenate", id), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var parts []arrow.Array
				for _, batch := range in.batches {
					for off := 0; off < batch.Rows; off += run {
						parts = append(parts, array.NewSlice(batch.Columns[id], int64(off), int64(min(off+run, batch.Rows))))
					}
				}
				a, err := array.Concatenate(parts, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				releaseAll(parts)
				a.Release()
			}
		})
		b.Run(fmt.Sprintf("field%d/builder", id), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var a arrow.Array
				switch id {
				case gen.VectorField:
					bld := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, batchType(in, id).(*arrow.FixedSizeBinaryType))
					for _, batch := range in.batches {
						c := batch.Columns[id].(*array.FixedSizeBinary)
						for i := 0; i < c.Len(); i++ {
							bld.Append(c.Value(i))
						}
					}
					a = bld.NewArray()
					bld.Release()
				default:
					bld := array.NewStringBuilder(memory.DefaultAllocator)
					for _, batch := range in.batches {
						c := batch.Columns[id].(*array.String)
						for i := 0; i < c.Len(); i++ {
							if c.IsNull(i) {
								bld.AppendNull()
							} else {
								bld.Append(c.Value(i))
							}
						}
					}
					a = bld.NewArray()
					bld.Release()
				}
				if int64(a.Len()) != rows {
					b.Fatal("short")
				}
				a.Release()
			}
		})
	}
}

func batchType(in *input, id int64) arrow.DataType { return in.batches[0].Columns[id].DataType() }

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}
