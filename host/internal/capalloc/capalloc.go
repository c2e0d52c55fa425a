// Package capalloc is a stand-in capped linear-memory allocator used until
// the mempool lease-bounded allocator is wired in. It refuses any grow past
// its cap and counts refusals.
package capalloc

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// Allocator caps linear memory at Cap bytes.
type Allocator struct {
	cap     uint64
	refused atomic.Int64
	used    atomic.Int64
}

// New returns an allocator capped at capBytes.
func New(capBytes uint64) *Allocator { return &Allocator{cap: capBytes} }

// Refused counts refused grows.
func (a *Allocator) Refused() int64 { return a.refused.Load() }

// Committed is the current size of the memory.
func (a *Allocator) Committed() int64 { return a.used.Load() }

// Allocate implements experimental.MemoryAllocator.
func (a *Allocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	if max > a.cap {
		max = a.cap
	}
	return &mem{a: a, max: max}
}

type mem struct {
	a   *Allocator
	max uint64
	buf []byte
}

func (m *mem) Reallocate(size uint64) []byte {
	if size > m.max {
		m.a.refused.Add(1)
		return nil
	}
	if uint64(cap(m.buf)) >= size {
		m.buf = m.buf[:size]
	} else {
		nb := make([]byte, size, size+size/8)
		copy(nb, m.buf)
		m.buf = nb
	}
	m.a.used.Store(int64(size))
	return m.buf
}

func (m *mem) Free() { m.buf = nil; m.a.used.Store(0) }
