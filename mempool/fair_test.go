package mempool

import (
	"context"
	"errors"
	"testing"
)

// Fairness: FIFO order, bounded bypass of a blocked waiter (see doc.go).

func TestStrictFIFOWithZeroBypass(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(0))
	hold := mustTry(t, p, "hold", 50)
	big := goPreFetch(t, p, context.Background(), "big", 60)
	small := goPreFetch(t, p, context.Background(), "small", 10)
	if _, err := p.TryPreFetch("new", 10); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryPreFetch bypassed a FIFO queue: %v", err)
	}
	if !waiting(p, 2) {
		t.Fatal("small request bypassed the head with MaxBypass 0")
	}
	mustReturn(t, p, hold)
	rb, rs := recv(t, big), recv(t, small)
	if rb.err != nil || rs.err != nil {
		t.Fatal(rb.err, rs.err)
	}
	checkUsed(t, p, 70)
}

func TestCancelledHeadUnblocksQueue(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(0))
	mustTry(t, p, "hold", 50)
	ctx, cancel := context.WithCancel(context.Background())
	big := goPreFetch(t, p, ctx, "big", 60)
	small := goPreFetch(t, p, context.Background(), "small", 10)
	cancel()
	if r := recv(t, big); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("big err = %v", r.err)
	}
	if r := recv(t, small); r.err != nil {
		t.Fatal(r.err)
	}
	checkUsed(t, p, 60)
}

func TestFIFOOrderAmongBlocked(t *testing.T) {
	p := newPool(t, 100)
	hold := mustTry(t, p, "hold", 100)
	first := goPreFetch(t, p, context.Background(), "first", 60)
	second := goPreFetch(t, p, context.Background(), "second", 60)
	mustReturn(t, p, hold)
	r1 := recv(t, first)
	if r1.err != nil {
		t.Fatal(r1.err)
	}
	if !waiting(p, 1) {
		t.Fatal("second served before first returned")
	}
	mustReturn(t, p, r1.lease)
	if r := recv(t, second); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestSmallBypassesBlockedLargeOnlyUpToLimit(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(3))
	hold := mustTry(t, p, "hold", 50)
	big := goPreFetch(t, p, context.Background(), "big", 90) // 50 free: blocked
	var smalls []*Lease
	for i := 0; i < 3; i++ { // enough memory is free: small ones overtake
		smalls = append(smalls, mustTry(t, p, "small", 5))
	}
	// The head has been overtaken 3 times: the queue is closed behind it,
	// although 35 bytes are free.
	if _, err := p.TryPreFetch("small", 5); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("4th bypass err = %v, want ErrWouldBlock", err)
	}
	late := goPreFetch(t, p, context.Background(), "late", 5)
	mustReturn(t, p, hold)
	if !waiting(p, 2) {
		t.Fatal("big granted while 15 bytes of small leases still block it (85 free < 90)")
	}
	for _, l := range smalls {
		mustReturn(t, p, l)
	}
	if r := recv(t, big); r.err != nil {
		t.Fatal(r.err)
	}
	if r := recv(t, late); r.err != nil { // served right after the head
		t.Fatal(r.err)
	}
	checkUsed(t, p, 95)
}

func TestDispatchBypassCountsQueuedSmalls(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(2))
	hold1 := mustTry(t, p, "hold", 60)
	hold2 := mustTry(t, p, "hold", 40)
	big := goPreFetch(t, p, context.Background(), "big", 70)
	var smalls []<-chan result
	for i := 0; i < 4; i++ {
		smalls = append(smalls, goPreFetch(t, p, context.Background(), "small", 10))
	}
	// 40 free: big does not fit; two smalls pass it, then the queue closes.
	mustReturn(t, p, hold2)
	s1, s2 := recv(t, smalls[0]), recv(t, smalls[1])
	if s1.err != nil || s2.err != nil {
		t.Fatal(s1.err, s2.err)
	}
	if !waiting(p, 3) {
		t.Fatal("a third small passed a head already bypassed twice")
	}
	checkUsed(t, p, 80)
	// 80 free: big first, then the third small; the fourth waits.
	mustReturn(t, p, hold1)
	if r := recv(t, big); r.err != nil {
		t.Fatal(r.err)
	}
	if r := recv(t, smalls[2]); r.err != nil {
		t.Fatal(r.err)
	}
	if !waiting(p, 1) {
		t.Fatal("fourth small granted without memory")
	}
	mustReturn(t, p, s1.lease)
	if r := recv(t, smalls[3]); r.err != nil {
		t.Fatal(r.err)
	}
	checkUsed(t, p, 100)
}

func TestGrowthWaiterNotStarvedByPreFetch(t *testing.T) {
	p := newPool(t, 100, WithMaxBypass(2))
	l := mustTry(t, p, "running", 40)
	hold1 := mustTry(t, p, "hold", 30)
	hold2 := mustTry(t, p, "hold", 30)
	grown := make(chan error, 1)
	go func() { grown <- l.Grow(context.Background(), 50) }()
	waitWaiters(t, p, 1)
	mustReturn(t, p, hold1) // 30 free < 50: the growth waits
	a := mustTry(t, p, "small", 10)
	b := mustTry(t, p, "small", 10)
	if _, err := p.TryPreFetch("small", 10); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("third PreFetch passed a growth bypassed twice: %v", err)
	}
	mustReturn(t, p, a)
	mustReturn(t, p, b)
	if !waiting(p, 1) {
		t.Fatal("growth granted with 30 free")
	}
	mustReturn(t, p, hold2)
	if err := <-grown; err != nil {
		t.Fatal(err)
	}
	if l.Size() != 90 {
		t.Fatalf("lease size = %d, want 90", l.Size())
	}
	checkUsed(t, p, 90)
}
