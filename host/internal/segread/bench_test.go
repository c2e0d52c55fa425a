package segread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// benchCollection writes a gen collection with 768-dim vectors, 2 segments
// of 20,000 rows in chunks of 5,000, into a fresh store of the backend
// ("local" or "minio"), removed when b ends.
func benchCollection(b *testing.B, backend string) (objstore.Store, *gen.Collection) {
	b.Helper()
	var store objstore.Store = objstoretest.Local(b)
	if backend == "minio" {
		store = objstoretest.MinIO(b)
	}
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 2, 20000, 5000, 768
	c.L0Segments = 0
	col, err := gen.Generate(context.Background(), store, c)
	if err != nil {
		b.Fatal(err)
	}
	return store, col
}

// BenchmarkRead reads every segment of the collection; MB/s counts the
// uncompressed input (sum of the binlogs' memory_size). The minio
// sub-benchmarks run under ./scripts/test.sh:
//
//	go test ./host/internal/segread -run XXX -bench Read -benchtime 3x
//	./scripts/test.sh go test ./host/internal/segread -run XXX -bench Read -benchtime 3x
func BenchmarkRead(b *testing.B) {
	for _, backend := range []string{"local", "minio"} {
		if backend == "minio" && os.Getenv(objstoretest.EnvEndpoint) == "" {
			b.Run("minio", func(b *testing.B) { b.Skip("MinIO not configured; run under ./scripts/test.sh") })
			continue
		}
		store, col := benchCollection(b, backend)
		for _, opts := range []segread.Options{
			{BatchRows: 1024, Prefetch: 1, Parallelism: 2},
			{BatchRows: 4096, Prefetch: 1, Parallelism: 2},
			{BatchRows: 1024, Prefetch: 1, Parallelism: 1},
		} {
			b.Run(fmt.Sprintf("%s/batch=%d/par=%d", backend, opts.BatchRows, opts.Parallelism), func(b *testing.B) {
				benchRead(b, store, col, opts)
			})
		}
	}
}

func benchRead(b *testing.B, store objstore.Store, col *gen.Collection, opts segread.Options) {
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
}
