package segread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// benchData is a gen collection with 768-dim vectors, 2 segments of 20,000
// rows in chunks of 5,000, generated once per test binary in a temp dir.
var benchData struct {
	once  sync.Once
	dir   string
	store objstore.Store
	col   *gen.Collection
	err   error
}

func benchCollection(b *testing.B) (objstore.Store, *gen.Collection) {
	b.Helper()
	benchData.once.Do(func() {
		benchData.dir, benchData.err = os.MkdirTemp("", "segread-bench")
		if benchData.err != nil {
			return
		}
		var s *objstore.Local
		s, benchData.err = objstore.NewLocal(benchData.dir)
		if benchData.err != nil {
			return
		}
		benchData.store = s
		c := gen.DefaultConfig()
		c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 2, 20000, 5000, 768
		c.L0Segments = 0
		benchData.col, benchData.err = gen.Generate(context.Background(), s, c)
	})
	if benchData.err != nil {
		b.Fatal(benchData.err)
	}
	return benchData.store, benchData.col
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchData.dir != "" {
		os.RemoveAll(benchData.dir)
	}
	os.Exit(code)
}

// BenchmarkRead reads every segment of the collection; MB/s counts the
// uncompressed input (sum of the binlogs' memory_size).
//
//	go test ./host/internal/segread -run XXX -bench Read -benchtime 3x
func BenchmarkRead(b *testing.B) {
	store, col := benchCollection(b)
	for _, opts := range []segread.Options{
		{BatchRows: 1024, Prefetch: 1, Parallelism: 2},
		{BatchRows: 4096, Prefetch: 1, Parallelism: 2},
		{BatchRows: 1024, Prefetch: 1, Parallelism: 1},
	} {
		b.Run(name(opts), func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(col.InputMemorySize)
			b.ReportAllocs()
			for b.Loop() {
				var rows int64
				for _, seg := range col.Segments {
					r, err := segread.Open(ctx, store, col.Schema, seg, opts)
					if err != nil {
						b.Fatal(err)
					}
					for {
						batch, err := r.Next(ctx)
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						rows += int64(batch.Rows)
						batch.Release()
					}
					r.Close()
				}
				if rows != col.Expected.Rows {
					b.Fatalf("read %d rows, want %d", rows, col.Expected.Rows)
				}
			}
		})
	}
}

func name(o segread.Options) string {
	return fmt.Sprintf("batch=%d/par=%d", o.BatchRows, o.Parallelism)
}
