package mempool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newPool(t *testing.T, total int64, opts ...Option) *Pool {
	t.Helper()
	p, err := NewPool(total, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitStats blocks until cond holds for the pool's stats. It never sleeps: it
// waits on the pool's subscription channel. The deadline only turns a hang
// into a failure.
func waitStats(t *testing.T, p *Pool, what string, cond func(Stats) bool) {
	t.Helper()
	ch, cancel := p.Subscribe()
	defer cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if cond(s) {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s; stats %+v", what, p.Stats())
		}
	}
}

func waitWaiters(t *testing.T, p *Pool, n int) {
	t.Helper()
	waitStats(t, p, "waiters", func(s Stats) bool { return s.Waiters == n })
}

type result struct {
	lease *Lease
	err   error
}

// goPreFetch starts a blocking PreFetch and waits until it is queued.
func goPreFetch(t *testing.T, p *Pool, ctx context.Context, owner string, size int64) <-chan result {
	t.Helper()
	before := p.Stats().Waiters
	ch := make(chan result, 1)
	go func() {
		l, err := p.PreFetch(ctx, owner, size)
		ch <- result{l, err}
	}()
	waitWaiters(t, p, before+1)
	return ch
}

func recv(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a result")
		return result{}
	}
}

// waiting reports whether exactly n requests are still queued. Unlike
// polling the result channel, this is exact: grants happen under the lock.
func waiting(p *Pool, n int) bool { return p.Stats().Waiters == n }

func mustTry(t *testing.T, p *Pool, owner string, size int64) *Lease {
	t.Helper()
	l, err := p.TryPreFetch(owner, size)
	if err != nil {
		t.Fatalf("TryPreFetch(%q, %d): %v", owner, size, err)
	}
	return l
}

func mustReturn(t *testing.T, p *Pool, l *Lease) {
	t.Helper()
	if err := p.Return(l); err != nil {
		t.Fatalf("Return(%v): %v", l, err)
	}
}

func checkUsed(t *testing.T, p *Pool, used int64) {
	t.Helper()
	if s := p.Stats(); s.Used != used {
		t.Fatalf("Used = %d, want %d (stats %+v)", s.Used, used, s)
	}
}

func TestNewPoolRejectsNegativeTotal(t *testing.T) {
	if _, err := NewPool(-1); !errors.Is(err, ErrInvalidSize) {
		t.Fatalf("err = %v, want ErrInvalidSize", err)
	}
}

func TestPreFetchReturnAccounting(t *testing.T) {
	p := newPool(t, 100)
	a, err := p.PreFetch(context.Background(), "plan-1", 30)
	if err != nil {
		t.Fatal(err)
	}
	b := mustTry(t, p, "plan-2", 50)
	c := mustTry(t, p, "plan-1", 20)
	if a.Size() != 30 || a.Owner() != "plan-1" || a.ID() == b.ID() {
		t.Fatalf("lease fields wrong: %v %v", a, b)
	}
	s := p.Stats()
	want := Stats{Total: 100, Used: 100, Available: 0, Leases: 3, Waiters: 0}
	if s.Total != want.Total || s.Used != want.Used || s.Available != 0 || s.Leases != 3 || s.Waiters != 0 {
		t.Fatalf("stats = %+v", s)
	}
	if got := s.LeasesByOwner["plan-1"]; got != (OwnerStats{Leases: 2, Bytes: 50}) {
		t.Fatalf("plan-1 = %+v", got)
	}
	if got := s.LeasesByOwner["plan-2"]; got != (OwnerStats{Leases: 1, Bytes: 50}) {
		t.Fatalf("plan-2 = %+v", got)
	}
	mustReturn(t, p, a)
	mustReturn(t, p, c)
	s = p.Stats()
	if s.Used != 50 || s.Available != 50 || s.Leases != 1 || len(s.LeasesByOwner) != 1 {
		t.Fatalf("stats after returns = %+v", s)
	}
	mustReturn(t, p, b)
	checkUsed(t, p, 0)
}

func TestInvalidSizes(t *testing.T) {
	p := newPool(t, 100)
	for _, size := range []int64{0, -1, -1 << 62} {
		if _, err := p.PreFetch(context.Background(), "x", size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("PreFetch(%d) err = %v, want ErrInvalidSize", size, err)
		}
		if _, err := p.TryPreFetch("x", size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("TryPreFetch(%d) err = %v, want ErrInvalidSize", size, err)
		}
	}
	l := mustTry(t, p, "x", 10)
	if err := l.Grow(context.Background(), 0); !errors.Is(err, ErrInvalidSize) {
		t.Errorf("Grow(0) err = %v", err)
	}
	if err := p.Shrink(-5); !errors.Is(err, ErrInvalidSize) {
		t.Errorf("Shrink(-5) err = %v", err)
	}
	checkUsed(t, p, 10)
}

func TestTooLargeFailsAtOnceWithBothNumbers(t *testing.T) {
	p := newPool(t, 1000)
	// A context that never ends: the call must not wait.
	_, err := p.PreFetch(context.Background(), "big-plan", 1001)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{"1001", "1000", "big-plan"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := p.TryPreFetch("big-plan", 5000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("TryPreFetch err = %v, want ErrTooLarge", err)
	}
	// Exactly the total is fine.
	mustReturn(t, p, mustTry(t, p, "x", 1000))
}

func TestTryPreFetchNeverBlocks(t *testing.T) {
	p := newPool(t, 100)
	l := mustTry(t, p, "a", 80)
	_, err := p.TryPreFetch("b", 30)
	if !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("err = %v, want ErrWouldBlock", err)
	}
	if !strings.Contains(err.Error(), "80 of 100 bytes in use") {
		t.Errorf("error %q does not give the usage", err)
	}
	mustReturn(t, p, l)
	mustReturn(t, p, mustTry(t, p, "b", 30))
}

func TestReturnTwiceOrForeignNeverCredits(t *testing.T) {
	p := newPool(t, 100)
	other := newPool(t, 100)
	a := mustTry(t, p, "a", 40)
	b := mustTry(t, p, "b", 10)
	mustReturn(t, p, a)
	if err := p.Return(a); !errors.Is(err, ErrNotHeld) || !strings.Contains(err.Error(), "already returned") {
		t.Fatalf("second Return err = %v", err)
	}
	checkUsed(t, p, 10)
	foreign := mustTry(t, other, "f", 50)
	if err := p.Return(foreign); !errors.Is(err, ErrNotHeld) || !strings.Contains(err.Error(), "another pool") {
		t.Fatalf("foreign Return err = %v", err)
	}
	if err := p.Return(nil); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("nil Return err = %v", err)
	}
	if err := p.Return(&Lease{}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("forged Return err = %v", err)
	}
	checkUsed(t, p, 10)
	if s := other.Stats(); s.Used != 50 {
		t.Fatalf("other pool used = %d", s.Used)
	}
	mustReturn(t, p, b)
	checkUsed(t, p, 0)
}

func TestPreFetchBlocksUntilReturn(t *testing.T) {
	p := newPool(t, 100)
	a := mustTry(t, p, "a", 70)
	ch := goPreFetch(t, p, context.Background(), "b", 50)
	if !waiting(p, 1) {
		t.Fatal("PreFetch returned while memory was held")
	}
	mustReturn(t, p, a)
	r := recv(t, ch)
	if r.err != nil || r.lease.Size() != 50 {
		t.Fatalf("PreFetch = %v, %v", r.lease, r.err)
	}
	checkUsed(t, p, 50)
}

func TestPreFetchContextEnds(t *testing.T) {
	p := newPool(t, 100)
	a := mustTry(t, p, "a", 70)
	ctx, cancel := context.WithCancel(context.Background())
	ch := goPreFetch(t, p, ctx, "b", 50)
	cancel()
	r := recv(t, ch)
	if !errors.Is(r.err, context.Canceled) || r.lease != nil {
		t.Fatalf("PreFetch = %v, %v; want context.Canceled", r.lease, r.err)
	}
	if s := p.Stats(); s.Waiters != 0 || s.Used != 70 {
		t.Fatalf("stats after cancel = %+v", s)
	}
	// An already-ended context fails even when memory is free.
	mustReturn(t, p, a)
	if _, err := p.PreFetch(ctx, "c", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("PreFetch with ended ctx err = %v", err)
	}
	checkUsed(t, p, 0)
}

func TestShrinkKeepsLeasesAndStopsGrantsUntilDrained(t *testing.T) {
	p := newPool(t, 100)
	a := mustTry(t, p, "a", 30)
	b := mustTry(t, p, "b", 30)
	if err := p.Shrink(40); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Total != 40 || s.Used != 60 || s.Available != 0 || s.Leases != 2 {
		t.Fatalf("stats after shrink = %+v", s)
	}
	if _, err := p.TryPreFetch("c", 1); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("grant while over the new total: %v", err)
	}
	ch := goPreFetch(t, p, context.Background(), "c", 20)
	mustReturn(t, p, a) // used 30: 30+20 > 40, still waiting
	if !waiting(p, 1) {
		t.Fatal("granted before use drained under the new total")
	}
	mustReturn(t, p, b) // used 0
	if r := recv(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
	checkUsed(t, p, 20)
	if _, err := p.TryPreFetch("d", 41); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "40") {
		t.Fatalf("request above the shrunk total: %v", err)
	}
}

func TestShrinkFailsWaitersThatNoLongerFit(t *testing.T) {
	p := newPool(t, 100)
	a := mustTry(t, p, "a", 50)
	ch := goPreFetch(t, p, context.Background(), "big", 80)
	if err := p.Shrink(60); err != nil {
		t.Fatal(err)
	}
	r := recv(t, ch)
	if !errors.Is(r.err, ErrTooLarge) || !strings.Contains(r.err.Error(), "80") || !strings.Contains(r.err.Error(), "60") {
		t.Fatalf("waiter err = %v, want ErrTooLarge naming 80 and 60", r.err)
	}
	mustReturn(t, p, a)
	checkUsed(t, p, 0)
}

func TestGrowTotalServesWaiters(t *testing.T) {
	p := newPool(t, 100)
	mustTry(t, p, "a", 90)
	ch := goPreFetch(t, p, context.Background(), "b", 50)
	if err := p.Grow(150); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
	if s := p.Stats(); s.Total != 150 || s.Used != 140 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestResizeDirectionErrors(t *testing.T) {
	p := newPool(t, 100)
	if err := p.Shrink(101); err == nil || !strings.Contains(err.Error(), "use Grow") {
		t.Fatalf("Shrink up err = %v", err)
	}
	if err := p.Grow(99); err == nil || !strings.Contains(err.Error(), "use Shrink") {
		t.Fatalf("Grow down err = %v", err)
	}
	for _, total := range []int64{100, 250, 10, 0, 10} {
		if err := p.SetTotal(total); err != nil {
			t.Fatalf("SetTotal(%d): %v", total, err)
		}
		if p.Total() != total {
			t.Fatalf("Total = %d, want %d", p.Total(), total)
		}
	}
}

func TestLeaseGrow(t *testing.T) {
	p := newPool(t, 100)
	l := mustTry(t, p, "plan", 40)
	if err := l.Grow(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	if l.Size() != 60 {
		t.Fatalf("Size = %d, want 60", l.Size())
	}
	s := p.Stats()
	if s.Used != 60 || s.LeasesByOwner["plan"] != (OwnerStats{Leases: 1, Bytes: 60}) {
		t.Fatalf("stats = %+v", s)
	}
	err := l.Grow(context.Background(), 41)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "101") || !strings.Contains(err.Error(), "100") {
		t.Fatalf("Grow past total err = %v", err)
	}
	if err := l.Grow(context.Background(), 1<<62); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge Grow err = %v", err)
	}
	other := mustTry(t, p, "other", 30)
	if err := l.TryGrow(20); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryGrow err = %v", err)
	}
	mustReturn(t, p, other)
	mustReturn(t, p, l)
	checkUsed(t, p, 0) // the full grown size was credited back
	if err := l.Grow(context.Background(), 1); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Grow after Return err = %v", err)
	}
	var zero *Lease
	if err := zero.Grow(context.Background(), 1); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("nil lease Grow err = %v", err)
	}
}

func TestLeaseGrowServedBeforeEarlierPreFetch(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(0))
	l := mustTry(t, p, "running", 50)
	hold := mustTry(t, p, "hold", 50)
	fresh := goPreFetch(t, p, context.Background(), "fresh", 40)
	grown := make(chan error, 1)
	go func() { grown <- l.Grow(context.Background(), 30) }()
	waitWaiters(t, p, 2)
	mustReturn(t, p, hold) // 50 free: the growth (30) goes first, then 20 free < 40
	if err := <-grown; err != nil {
		t.Fatal(err)
	}
	if !waiting(p, 1) {
		t.Fatal("PreFetch served before the earlier-queued lease growth")
	}
	mustReturn(t, p, l)
	if r := recv(t, fresh); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestLeaseGrowFailsWhenReturnedWhileWaiting(t *testing.T) {
	p := newPool(t, 100)
	l := mustTry(t, p, "plan", 50)
	mustTry(t, p, "hold", 50)
	grown := make(chan error, 1)
	go func() { grown <- l.Grow(context.Background(), 10) }()
	waitWaiters(t, p, 1)
	mustReturn(t, p, l)
	if err := <-grown; !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Grow err = %v, want ErrNotHeld", err)
	}
	if s := p.Stats(); s.Used != 50 || s.Waiters != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestLeaseGrowContextEndsKeepsSize(t *testing.T) {
	p := newPool(t, 100)
	l := mustTry(t, p, "plan", 50)
	mustTry(t, p, "hold", 50)
	ctx, cancel := context.WithCancel(context.Background())
	grown := make(chan error, 1)
	go func() { grown <- l.Grow(ctx, 10) }()
	waitWaiters(t, p, 1)
	cancel()
	if err := <-grown; !errors.Is(err, context.Canceled) {
		t.Fatalf("Grow err = %v", err)
	}
	if l.Size() != 50 {
		t.Fatalf("Size = %d after cancelled Grow", l.Size())
	}
	checkUsed(t, p, 100)
}

func TestSubscribeReportsChanges(t *testing.T) {
	p := newPool(t, 100)
	ch, cancel := p.Subscribe()
	if s := <-ch; s.Total != 100 || s.Used != 0 {
		t.Fatalf("initial snapshot = %+v", s)
	}
	l := mustTry(t, p, "plan", 25)
	if s := <-ch; s.Used != 25 || s.LeasesByOwner["plan"].Bytes != 25 {
		t.Fatalf("after grant = %+v", s)
	}
	// A slow reader sees only the latest state.
	mustReturn(t, p, l)
	if err := p.Shrink(80); err != nil {
		t.Fatal(err)
	}
	if s := <-ch; s.Used != 0 || s.Total != 80 {
		t.Fatalf("latest = %+v", s)
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed after cancel")
	}
	mustTry(t, p, "plan", 5) // no subscriber: must not block
}
