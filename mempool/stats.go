package mempool

import "maps"

// Stats is a snapshot of a pool.
type Stats struct {
	Total     int64 // current pool total in bytes
	Used      int64 // bytes held by leases; may exceed Total after a Shrink
	Available int64 // Total-Used, or 0 when Used >= Total
	Leases    int   // leases held
	Waiters   int   // blocked PreFetch and Lease.Grow calls
	// LeasesByOwner maps each owner holding at least one lease to its usage.
	LeasesByOwner map[string]OwnerStats
}

// OwnerStats is one owner's share of a pool.
type OwnerStats struct {
	Leases int   // leases held by the owner
	Bytes  int64 // bytes held by those leases
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats()
}

func (p *Pool) stats() Stats {
	s := Stats{
		Total:         p.total,
		Used:          p.used,
		Leases:        p.leases,
		Waiters:       p.growQ.Len() + p.freshQ.Len(),
		LeasesByOwner: make(map[string]OwnerStats, len(p.owners)),
	}
	if p.used < p.total {
		s.Available = p.total - p.used
	}
	for k, v := range p.owners {
		s.LeasesByOwner[k] = v
	}
	return s
}

type subscription struct {
	ch chan Stats
}

// Subscribe returns a channel that receives a Stats snapshot after every
// change of the pool (grant, return, resize, a waiter arriving or leaving)
// and a cancel function that stops the updates and closes the channel.
//
// The channel holds one snapshot and is never blocked on: if the reader is
// behind, the unread snapshot is replaced by the newer one, so a metrics
// reader always sees the latest state but may skip intermediate ones.
func (p *Pool) Subscribe() (<-chan Stats, func()) {
	sub := &subscription{ch: make(chan Stats, 1)}
	p.mu.Lock()
	if p.subs == nil {
		p.subs = map[*subscription]struct{}{}
	}
	p.subs[sub] = struct{}{}
	sub.ch <- p.stats()
	p.mu.Unlock()
	cancel := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.subs[sub]; ok {
			delete(p.subs, sub)
			close(sub.ch)
		}
	}
	return sub.ch, cancel
}

// notify publishes the current state to subscribers. Called with p.mu held.
func (p *Pool) notify() {
	if len(p.subs) == 0 {
		return
	}
	s := p.stats()
	first := true
	for sub := range p.subs {
		if !first { // each subscriber gets its own map
			s.LeasesByOwner = maps.Clone(s.LeasesByOwner)
		}
		first = false
		select {
		case sub.ch <- s:
			continue
		default:
		}
		select { // drop the stale snapshot, then send the new one
		case <-sub.ch:
		default:
		}
		select {
		case sub.ch <- s:
		default:
		}
	}
}
