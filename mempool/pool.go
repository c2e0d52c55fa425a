package mempool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors returned by the pool. They are wrapped with the numbers involved;
// test with errors.Is.
var (
	// ErrInvalidSize: a size, extra or total that is zero or negative where a
	// positive number is required (or negative where zero is allowed).
	ErrInvalidSize = errors.New("invalid size")
	// ErrTooLarge: the request can never be granted under the current total.
	ErrTooLarge = errors.New("request exceeds the pool total")
	// ErrWouldBlock: TryPreFetch or TryGrow could not be granted right now.
	ErrWouldBlock = errors.New("not enough free memory now")
	// ErrNotHeld: the lease is nil, from another pool, or already returned.
	ErrNotHeld = errors.New("lease not held by this pool")
)

// DefaultMaxBypass is the bypass limit used when [WithMaxBypass] is not given.
const DefaultMaxBypass = 8

// Option configures a [Pool].
type Option func(*Pool)

// WithMaxBypass sets how many times a waiting request may be overtaken by
// requests behind it before the queue closes behind it (see the package
// documentation). 0 makes the queue strictly FIFO. Negative values are
// treated as 0.
func WithMaxBypass(n int) Option {
	return func(p *Pool) {
		if n < 0 {
			n = 0
		}
		p.maxBypass = n
	}
}

// Pool hands out memory as leases under a resizable total. It is safe for
// concurrent use. See the package documentation for the rules.
type Pool struct {
	mu        sync.Mutex
	total     int64
	used      int64
	leases    int
	nextID    uint64
	maxBypass int
	owners    map[string]OwnerStats
	growQ     list.List // *waiter for Lease.Grow, served before freshQ
	freshQ    list.List // *waiter for PreFetch
	skipped   []*waiter // scratch for dispatch
	subs      map[*subscription]struct{}

	// onGrant, when set (tests), is called under the lock after every grant
	// with the pool's used and total bytes after the grant.
	onGrant func(used, total int64)
}

// Lease is memory granted by a [Pool]. Give it back with [Pool.Return].
type Lease struct {
	pool  *Pool
	id    uint64
	owner string
	size  atomic.Int64
	held  bool // guarded by pool.mu
}

// ID returns the lease's number, unique within its pool.
func (l *Lease) ID() uint64 { return l.id }

// Owner returns the owner name given to PreFetch.
func (l *Lease) Owner() string { return l.owner }

// Size returns the bytes the lease currently holds (grows with [Lease.Grow]).
func (l *Lease) Size() int64 { return l.size.Load() }

// String describes the lease for logs and errors.
func (l *Lease) String() string {
	return fmt.Sprintf("lease %d of %q (%d bytes)", l.id, l.owner, l.Size())
}

// waiter is one blocked PreFetch or Lease.Grow.
type waiter struct {
	owner    string
	size     int64  // bytes to add to used when granted
	lease    *Lease // the lease to enlarge (Lease.Grow); nil for PreFetch
	bypassed int    // grants made to requests behind this one
	elem     *list.Element
	queue    *list.List
	ready    chan struct{} // closed once granted or failed
	granted  *Lease
	err      error
}

// need is the lease size the waiter ends up with; it must fit the total.
func (w *waiter) need() int64 {
	if w.lease != nil {
		return w.lease.Size() + w.size
	}
	return w.size
}

func (w *waiter) tooLargeNow(total int64) error {
	if w.lease != nil {
		return fmt.Errorf("%w: would need %d bytes, pool total is now %d bytes", ErrTooLarge, w.need(), total)
	}
	return fmt.Errorf("%w: requested %d bytes, pool total is now %d bytes", ErrTooLarge, w.size, total)
}

// NewPool returns a pool of total bytes. total may be 0 (nothing can be
// granted until Grow) but not negative.
func NewPool(total int64, opts ...Option) (*Pool, error) {
	if total < 0 {
		return nil, fmt.Errorf("mempool: new pool: total %d bytes is negative: %w", total, ErrInvalidSize)
	}
	p := &Pool{total: total, maxBypass: DefaultMaxBypass, owners: map[string]OwnerStats{}}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// PreFetch blocks until size bytes are granted to owner or ctx is done. It
// fails at once with [ErrTooLarge] if size exceeds the pool's current total,
// and with [ErrInvalidSize] if size is not positive. If ctx ends first the
// error wraps ctx.Err() and nothing is held, even if the grant raced with the
// cancellation. A waiter whose size no longer fits after a Shrink fails with
// ErrTooLarge.
func (p *Pool) PreFetch(ctx context.Context, owner string, size int64) (*Lease, error) {
	return p.prefetch(ctx, owner, size, true)
}

// TryPreFetch grants size bytes to owner if that is possible right now under
// the same rules as PreFetch, and otherwise returns [ErrWouldBlock] without
// waiting.
func (p *Pool) TryPreFetch(owner string, size int64) (*Lease, error) {
	return p.prefetch(context.Background(), owner, size, false)
}

func (p *Pool) prefetch(ctx context.Context, owner string, size int64, wait bool) (*Lease, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mempool: prefetch for %q: size %d bytes must be positive: %w", owner, size, ErrInvalidSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mempool: prefetch of %d bytes for %q: %w", size, owner, err)
	}
	p.mu.Lock()
	if size > p.total {
		total := p.total
		p.mu.Unlock()
		return nil, tooLarge(owner, size, total)
	}
	if size <= p.total-p.used && p.mayOvertake(&p.freshQ) {
		l := p.newLease(owner, size)
		p.bypassAll(&p.growQ)
		p.bypassAll(&p.freshQ)
		p.notify()
		p.mu.Unlock()
		return l, nil
	}
	if !wait {
		used, total, waiters := p.used, p.total, p.growQ.Len()+p.freshQ.Len()
		p.mu.Unlock()
		return nil, fmt.Errorf("mempool: prefetch of %d bytes for %q: %d of %d bytes in use, %d waiting: %w",
			size, owner, used, total, waiters, ErrWouldBlock)
	}
	w := p.enqueue(&p.freshQ, owner, size, nil)
	p.mu.Unlock()
	if err := p.await(ctx, w); err != nil {
		return nil, fmt.Errorf("mempool: prefetch of %d bytes for %q: %w", size, owner, err)
	}
	return w.granted, nil
}

// Grow enlarges the lease by extra bytes, blocking like PreFetch; use it to
// retry a task that ran out of memory. Lease growth is queued ahead of all
// PreFetch waiters (a running task holds memory that a new one may be waiting
// for) and FIFO among other growths. It fails at once if the lease would
// exceed the pool total, if extra is not positive, or if the lease is no
// longer held; if the lease is returned while the growth waits, the growth
// fails with [ErrNotHeld]. If ctx ends first the lease keeps its old size.
//
// A task that holds memory and waits for more can deadlock with another one
// doing the same; give Grow a context with a deadline.
func (l *Lease) Grow(ctx context.Context, extra int64) error {
	return l.grow(ctx, extra, true)
}

// TryGrow is Grow without waiting: it returns [ErrWouldBlock] if the extra
// bytes cannot be granted right now.
func (l *Lease) TryGrow(extra int64) error {
	return l.grow(context.Background(), extra, false)
}

func (l *Lease) grow(ctx context.Context, extra int64, wait bool) error {
	if l == nil || l.pool == nil {
		return fmt.Errorf("mempool: grow: %w", ErrNotHeld)
	}
	p := l.pool
	if extra <= 0 {
		return fmt.Errorf("mempool: grow %v: extra %d bytes must be positive: %w", l, extra, ErrInvalidSize)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mempool: grow %v by %d bytes: %w", l, extra, err)
	}
	p.mu.Lock()
	if !l.held {
		p.mu.Unlock()
		return fmt.Errorf("mempool: grow %v: %w (already returned)", l, ErrNotHeld)
	}
	size := l.Size()
	if extra > p.total-size { // also catches size+extra overflow
		total := p.total
		p.mu.Unlock()
		return fmt.Errorf("mempool: grow %v by %d bytes: %w: would need %d bytes, pool total is %d bytes",
			l, extra, ErrTooLarge, satAdd(size, extra), total)
	}
	if extra <= p.total-p.used && p.mayOvertake(&p.growQ) {
		p.enlarge(l, extra)
		p.bypassAll(&p.growQ)
		p.notify()
		p.mu.Unlock()
		return nil
	}
	if !wait {
		used, total := p.used, p.total
		p.mu.Unlock()
		return fmt.Errorf("mempool: grow %v by %d bytes: %d of %d bytes in use: %w", l, extra, used, total, ErrWouldBlock)
	}
	w := p.enqueue(&p.growQ, l.owner, extra, l)
	p.mu.Unlock()
	if err := p.await(ctx, w); err != nil {
		return fmt.Errorf("mempool: grow %v by %d bytes: %w", l, extra, err)
	}
	return nil
}

// Return gives the lease's memory back to the pool. Returning a lease twice,
// a lease of another pool, or nil is an error ([ErrNotHeld]) and credits
// nothing. Pending Grow calls on the lease fail.
func (p *Pool) Return(l *Lease) error {
	if l == nil {
		return fmt.Errorf("mempool: return: nil lease: %w", ErrNotHeld)
	}
	if l.pool != p {
		return fmt.Errorf("mempool: return %v: lease belongs to another pool: %w", l, ErrNotHeld)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !l.held {
		return fmt.Errorf("mempool: return %v: already returned: %w", l, ErrNotHeld)
	}
	for e := p.growQ.Front(); e != nil; {
		next := e.Next()
		if w := e.Value.(*waiter); w.lease == l {
			p.fail(w, fmt.Errorf("lease returned while growing: %w", ErrNotHeld))
		}
		e = next
	}
	p.release(l)
	p.dispatch()
	p.notify()
	return nil
}

// Shrink lowers the pool total to total bytes. Granted leases are kept even
// if they now exceed the total; no new grant is made until use has drained
// below the new total. Waiters that can no longer fit fail with
// [ErrTooLarge]. total above the current total is an error (use Grow).
func (p *Pool) Shrink(total int64) error { return p.resize("shrink", total) }

// Grow raises the pool total to total bytes and serves waiters that now fit.
// total below the current total is an error (use Shrink).
func (p *Pool) Grow(total int64) error { return p.resize("grow", total) }

// SetTotal moves the total to total bytes, growing or shrinking as needed,
// with the rules of Grow and Shrink.
func (p *Pool) SetTotal(total int64) error { return p.resize("", total) }

func (p *Pool) resize(verb string, total int64) error {
	if total < 0 {
		return fmt.Errorf("mempool: resize to %d bytes: negative total: %w", total, ErrInvalidSize)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case verb == "shrink" && total > p.total:
		return fmt.Errorf("mempool: shrink to %d bytes: above the current total of %d bytes (use Grow)", total, p.total)
	case verb == "grow" && total < p.total:
		return fmt.Errorf("mempool: grow to %d bytes: below the current total of %d bytes (use Shrink)", total, p.total)
	}
	p.total = total
	for _, q := range []*list.List{&p.growQ, &p.freshQ} {
		for e := q.Front(); e != nil; {
			next := e.Next()
			if w := e.Value.(*waiter); w.need() > total {
				p.fail(w, w.tooLargeNow(total))
			}
			e = next
		}
	}
	p.dispatch()
	p.notify()
	return nil
}

// Total returns the pool's current total in bytes.
func (p *Pool) Total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// --- internals; all below run with p.mu held ---

func tooLarge(owner string, size, total int64) error {
	return fmt.Errorf("mempool: prefetch for %q: %w: requested %d bytes, pool total is %d bytes",
		owner, ErrTooLarge, size, total)
}

func satAdd(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return int64(^uint64(0) >> 1)
}

// mayOvertake reports whether a new request may be granted ahead of every
// waiter in the queues it would otherwise wait behind: growths queue behind
// growQ only, prefetches behind both queues.
func (p *Pool) mayOvertake(q *list.List) bool {
	for _, qq := range p.queuesUpTo(q) {
		for e := qq.Front(); e != nil; e = e.Next() {
			if e.Value.(*waiter).bypassed >= p.maxBypass {
				return false
			}
		}
	}
	return true
}

func (p *Pool) queuesUpTo(q *list.List) []*list.List {
	if q == &p.growQ {
		return []*list.List{&p.growQ}
	}
	return []*list.List{&p.growQ, &p.freshQ}
}

// bypassAll records that a grant overtook every waiter in q.
func (p *Pool) bypassAll(q *list.List) {
	for e := q.Front(); e != nil; e = e.Next() {
		e.Value.(*waiter).bypassed++
	}
}

func (p *Pool) newLease(owner string, size int64) *Lease {
	p.nextID++
	l := &Lease{pool: p, id: p.nextID, owner: owner, held: true}
	l.size.Store(size)
	p.used += size
	p.leases++
	o := p.owners[owner]
	o.Leases++
	o.Bytes += size
	p.owners[owner] = o
	if p.onGrant != nil {
		p.onGrant(p.used, p.total)
	}
	return l
}

func (p *Pool) enlarge(l *Lease, extra int64) {
	l.size.Add(extra)
	p.used += extra
	p.addOwnerBytes(l.owner, extra)
	if p.onGrant != nil {
		p.onGrant(p.used, p.total)
	}
}

func (p *Pool) release(l *Lease) {
	size := l.Size()
	l.held = false
	p.used -= size
	p.leases--
	o := p.owners[l.owner]
	o.Leases--
	o.Bytes -= size
	if o.Leases == 0 {
		delete(p.owners, l.owner)
	} else {
		p.owners[l.owner] = o
	}
}

func (p *Pool) addOwnerBytes(owner string, delta int64) {
	o := p.owners[owner]
	o.Bytes += delta
	p.owners[owner] = o
}

func (p *Pool) enqueue(q *list.List, owner string, size int64, l *Lease) *waiter {
	w := &waiter{owner: owner, size: size, lease: l, queue: q, ready: make(chan struct{})}
	w.elem = q.PushBack(w)
	p.notify()
	return w
}

func (p *Pool) remove(w *waiter) {
	w.queue.Remove(w.elem)
	w.elem, w.queue = nil, nil
}

func (p *Pool) fail(w *waiter, err error) {
	p.remove(w)
	w.err = err
	close(w.ready)
}

// dispatch serves waiters in queue order (growths, then prefetches). A
// waiter that does not fit is skipped and counts one bypass for each later
// grant; once a skipped waiter has been bypassed maxBypass times, nothing
// behind it is served until it is. Waiters that can never fit fail.
func (p *Pool) dispatch() {
	free := p.total - p.used
	skipped := p.skipped[:0]
	defer func() { clear(skipped); p.skipped = skipped[:0] }()
	for _, q := range []*list.List{&p.growQ, &p.freshQ} {
		for e := q.Front(); e != nil; {
			next := e.Next()
			w := e.Value.(*waiter)
			switch {
			case w.need() > p.total:
				p.fail(w, w.tooLargeNow(p.total))
			case w.size <= free:
				p.remove(w)
				if w.lease != nil {
					p.enlarge(w.lease, w.size)
				} else {
					w.granted = p.newLease(w.owner, w.size)
				}
				free -= w.size
				close(w.ready)
				closed := false
				for _, s := range skipped {
					s.bypassed++
					closed = closed || s.bypassed >= p.maxBypass
				}
				if closed {
					return
				}
			default:
				skipped = append(skipped, w)
				if w.bypassed >= p.maxBypass {
					return
				}
			}
			e = next
		}
	}
}

// await waits for w to be resolved or ctx to end. On ctx end it withdraws
// the request, undoing a grant that raced with the cancellation.
func (p *Pool) await(ctx context.Context, w *waiter) error {
	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.ready:
		if w.err != nil {
			return w.err
		}
		// Granted just as ctx ended: give it back.
		if w.lease != nil {
			if w.lease.held {
				w.lease.size.Add(-w.size)
				p.used -= w.size
				p.addOwnerBytes(w.owner, -w.size)
			}
		} else {
			p.release(w.granted)
			w.granted = nil
		}
	default:
		p.remove(w)
	}
	p.dispatch()
	p.notify()
	return ctx.Err()
}
