package mempool

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkPreFetchReturn: one goroutine, memory always free.
func BenchmarkPreFetchReturn(b *testing.B) {
	p, _ := NewPool(1 << 30)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := p.PreFetch(ctx, "bench", 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Return(l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreFetchReturnContended runs 8 goroutines doing PreFetch+Return.
// "ample": the total fits all 8 leases (lock contention only); "scarce": it
// fits 4, so half of the calls wait for a Return. ns/op is per PreFetch+Return
// pair across all goroutines.
func BenchmarkPreFetchReturnContended(b *testing.B) {
	for _, c := range []struct {
		name  string
		total int64
	}{{"ample", 8 << 20}, {"scarce", 4 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			const goroutines = 8
			p, _ := NewPool(c.total)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				n := b.N / goroutines
				if g < b.N%goroutines {
					n++
				}
				wg.Add(1)
				go func(n int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						l, err := p.PreFetch(ctx, "bench", 1<<20)
						if err != nil {
							b.Error(err)
							return
						}
						if err := p.Return(l); err != nil {
							b.Error(err)
							return
						}
					}
				}(n)
			}
			wg.Wait()
		})
	}
}
