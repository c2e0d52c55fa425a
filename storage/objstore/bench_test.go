package objstore_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// BenchmarkObject64MiB measures PUT (known size, and streamed with unknown
// size) and GET throughput of one 64 MiB
// object on each backend (MinIO is skipped when not configured):
//
//	./scripts/test.sh go test -run='^$' -bench=Object64MiB -benchtime=3x ./storage/objstore/
func BenchmarkObject64MiB(b *testing.B) {
	const size = 64 << 20
	data := payload(size, 5)
	backends := []struct {
		name string
		open func(testing.TB) objstore.Store
	}{
		{"local", func(tb testing.TB) objstore.Store { return objstoretest.Local(tb) }},
		{"minio", func(tb testing.TB) objstore.Store { return objstoretest.MinIO(tb) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := context.Background()
			b.Run("put", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					if err := s.Put(ctx, "bench/obj", bytes.NewReader(data), size); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("put-stream", func(b *testing.B) { // unknown size, one-shot reader
				b.SetBytes(size)
				for b.Loop() {
					if err := s.Put(ctx, "bench/obj", oneShot{bytes.NewReader(data)}, -1); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("get", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					rc, err := s.Get(ctx, "bench/obj")
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, rc)
					rc.Close()
					if err != nil || n != size {
						b.Fatalf("read %d bytes: %v", n, err)
					}
				}
			})
		})
	}
}
