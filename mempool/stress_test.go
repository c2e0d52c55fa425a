package mempool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkInvariants verifies the pool's books under its lock: used equals the
// sum of the owners' bytes and the lease count matches.
func (p *Pool) checkInvariants() error {
	var bytes int64
	var leases int
	for owner, o := range p.owners {
		if o.Leases <= 0 || o.Bytes < 0 {
			return fmt.Errorf("owner %q has %+v", owner, o)
		}
		bytes += o.Bytes
		leases += o.Leases
	}
	if bytes != p.used || leases != p.leases {
		return fmt.Errorf("owners sum to %d bytes / %d leases, pool says %d / %d", bytes, leases, p.used, p.leases)
	}
	return nil
}

// TestStressRandomOps runs many goroutines doing random PreFetch, TryPreFetch,
// Return, double Return, Lease.Grow and pool Shrink/Grow. It checks at every
// grant (under the pool lock) that use does not exceed the total at that
// moment; use above the total is only possible for leases granted before a
// Shrink. It checks that every granted byte is returned exactly once.
func TestStressRandomOps(t *testing.T) {
	const (
		workers   = 12
		ops       = 400
		baseTotal = 1000
	)
	p := newPool(t, baseTotal, WithMaxBypass(4))
	var violations atomic.Int64
	var firstViolation atomic.Value
	p.onGrant = func(used, total int64) {
		err := p.checkInvariants()
		if err == nil && used > total {
			err = fmt.Errorf("grant made use %d exceed total %d", used, total)
		}
		if err != nil {
			violations.Add(1)
			firstViolation.CompareAndSwap(nil, err.Error())
		}
	}

	var granted, returned atomic.Int64 // bytes
	var grants, returns atomic.Int64   // leases
	var wg sync.WaitGroup
	stop := make(chan struct{})

	// Resizer: random Shrink/Grow while workers run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				_ = p.SetTotal(baseTotal)
				return
			default:
			}
			total := int64(200 + r.IntN(1000))
			var err error
			if total < p.Total() {
				err = p.Shrink(total)
			} else {
				err = p.Grow(total)
			}
			if err != nil && !errors.Is(err, ErrInvalidSize) {
				// Another resizer does not exist, so direction errors are bugs.
				t.Errorf("resize to %d: %v", total, err)
			}
			for i := 0; i < 20; i++ {
				_ = p.Stats()
			}
		}
	}()

	var workersWG sync.WaitGroup
	for w := 0; w < workers; w++ {
		workersWG.Add(1)
		go func(w int) {
			defer workersWG.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			owner := fmt.Sprintf("worker-%d", w%4)
			var held []*Lease
			sizes := map[*Lease]int64{}
			var returnedLeases []*Lease
			take := func(l *Lease, size int64) {
				held = append(held, l)
				sizes[l] = size
				granted.Add(size)
				grants.Add(1)
			}
			give := func(i int) {
				l := held[i]
				if err := p.Return(l); err != nil {
					t.Errorf("return %v: %v", l, err)
					return
				}
				returned.Add(sizes[l])
				returns.Add(1)
				delete(sizes, l)
				held = append(held[:i], held[i+1:]...)
				returnedLeases = append(returnedLeases, l)
			}
			for i := 0; i < ops; i++ {
				switch op := r.IntN(10); {
				case op < 3 && len(held) < 3:
					size := int64(1 + r.IntN(300))
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2000))*time.Microsecond)
					l, err := p.PreFetch(ctx, owner, size)
					cancel()
					switch {
					case err == nil:
						take(l, size)
					case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTooLarge):
					default:
						t.Errorf("PreFetch: %v", err)
					}
				case op < 5 && len(held) < 3:
					size := int64(1 + r.IntN(200))
					l, err := p.TryPreFetch(owner, size)
					switch {
					case err == nil:
						take(l, size)
					case errors.Is(err, ErrWouldBlock), errors.Is(err, ErrTooLarge):
					default:
						t.Errorf("TryPreFetch: %v", err)
					}
				case op < 6 && len(held) > 0:
					l := held[r.IntN(len(held))]
					extra := int64(1 + r.IntN(100))
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(1000))*time.Microsecond)
					err := l.Grow(ctx, extra)
					cancel()
					switch {
					case err == nil:
						sizes[l] += extra
						granted.Add(extra)
					case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTooLarge):
					default:
						t.Errorf("Grow: %v", err)
					}
					if l.Size() != sizes[l] {
						t.Errorf("lease size %d, expected %d", l.Size(), sizes[l])
					}
				case op < 9 && len(held) > 0:
					give(r.IntN(len(held)))
				case len(returnedLeases) > 0:
					l := returnedLeases[r.IntN(len(returnedLeases))]
					if err := p.Return(l); !errors.Is(err, ErrNotHeld) {
						t.Errorf("double return of %v: %v", l, err)
					}
				}
			}
			for len(held) > 0 {
				give(0)
			}
		}(w)
	}
	workersWG.Wait()
	close(stop)
	wg.Wait()

	if n := violations.Load(); n > 0 {
		t.Fatalf("%d invariant violations, first: %v", n, firstViolation.Load())
	}
	s := p.Stats()
	if s.Used != 0 || s.Leases != 0 || s.Waiters != 0 || len(s.LeasesByOwner) != 0 {
		t.Fatalf("final stats = %+v", s)
	}
	if granted.Load() != returned.Load() || grants.Load() != returns.Load() {
		t.Fatalf("granted %d bytes in %d leases, returned %d bytes in %d leases",
			granted.Load(), grants.Load(), returned.Load(), returns.Load())
	}
	if grants.Load() == 0 {
		t.Fatal("no grants happened")
	}
	t.Logf("%d leases, %d bytes granted and returned", grants.Load(), granted.Load())
}
