package mempool

import (
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// wasmPageSize is the size of one WebAssembly page.
const wasmPageSize = 64 << 10

// MemoryAllocator backs the linear memory of one wasm instance and refuses to
// let it grow past a fixed cap, normally the strategy share of a [Lease].
//
// Pass it to wazero with experimental.WithMemoryAllocator(ctx, a) on the
// context given to InstantiateModule. wazero calls Allocate once per memory.
// On unix systems the allocator reserves the whole cap as address space with
// mmap(PROT_NONE) at Allocate, commits pages with mprotect(READ|WRITE) as the
// guest grows, and unmaps everything in Free. Consequences:
//
//   - The buffer never moves, so views from api.Memory.Read stay valid across
//     memory.grow, and growth never copies (no transient 2x peak).
//   - The memory lives outside the Go heap and does not distort the host's GC
//     pacing or GOMEMLIMIT.
//   - A grow that would take the memory past Cap is refused: wazero then makes
//     memory.grow return -1 inside the guest (a Go guest turns that into a
//     fatal "out of memory" and exits with code 2).
//   - Only the cap is reserved, never wazero's 4 GiB default maximum, so it
//     works on hosts with strict overcommit or a small address-space limit.
//
// The cap is enforced in bytes: a grow to N pages succeeds only if N*64 KiB
// is at most Cap, so a cap that is not a multiple of 64 KiB is effectively
// rounded down to whole wasm pages.
//
// One allocator serves one instance at a time. If Allocate is called again
// while a memory is still live (a second instance, or a module with several
// memories), the new memory gets no reservation and every grow of it is
// refused. After Free the allocator may be reused for a new instance.
//
// wazero v1.12 slices the result of the first Reallocate(min) without a nil
// check, so instantiating a module whose declared minimum memory exceeds Cap
// panics inside InstantiateModule. Check the compiled module's minimum pages
// against Cap before instantiating (the host's admission step does).
//
// wazero does not call Free if instantiation fails after the memory was
// built (for example a trapping start section). Call [MemoryAllocator.Release]
// after a failed InstantiateModule, or after closing the module, to be sure
// the reservation is gone.
//
// On systems without mmap (non-unix builds) the allocator falls back to a Go
// heap buffer of Cap bytes allocated at Allocate: the cap and the non-moving
// guarantee still hold, but the memory is on the Go heap.
type MemoryAllocator struct {
	capBytes  uint64
	committed atomic.Uint64
	refused   atomic.Int64

	mu   sync.Mutex
	live *linearMemory // the memory handed to wazero and not yet freed
}

var _ experimental.MemoryAllocator = (*MemoryAllocator)(nil)

// NewMemoryAllocator returns an allocator whose memory may grow to at most
// capBytes bytes.
func NewMemoryAllocator(capBytes uint64) *MemoryAllocator {
	return &MemoryAllocator{capBytes: capBytes}
}

// Cap returns the most bytes the linear memory may grow to.
func (a *MemoryAllocator) Cap() uint64 { return a.capBytes }

// Committed returns the bytes currently committed (readable and writable)
// for the live memory, 0 before Allocate and after Free.
func (a *MemoryAllocator) Committed() uint64 { return a.committed.Load() }

// Refused returns how many grow requests (including the initial allocation
// of the minimum size) this allocator has refused since it was created.
func (a *MemoryAllocator) Refused() int64 { return a.refused.Load() }

// Allocate implements experimental.MemoryAllocator. capHint is wazero's
// suggested initial capacity and is ignored; max is the module's maximum
// size in bytes, and the reservation is min(max, Cap).
func (a *MemoryAllocator) Allocate(capHint, max uint64) experimental.LinearMemory {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := &linearMemory{owner: a}
	if a.live != nil {
		// Second memory while the first is live: refuse all growth.
		return m
	}
	limit := a.capBytes
	if max < limit {
		limit = max
	}
	m.limit = limit
	m.reserve(limit)
	a.live = m
	return m
}

// Release frees the live memory if wazero has not done so. It is a no-op when
// nothing is live. Call it only when no module uses the memory any more:
// after InstantiateModule failed, or after the module was closed.
func (a *MemoryAllocator) Release() {
	a.mu.Lock()
	m := a.live
	a.mu.Unlock()
	if m != nil {
		m.Free()
	}
}

// linearMemory is one reservation handed to wazero.
type linearMemory struct {
	owner     *MemoryAllocator
	limit     uint64 // most bytes Reallocate may return
	buf       []byte // the whole reservation (len == reserved bytes)
	committed uint64 // bytes at the start of buf that are read-write
	freed     bool
}

// Reallocate implements experimental.LinearMemory. It returns nil, and counts
// a refusal, when size exceeds the cap or the pages cannot be committed.
func (m *linearMemory) Reallocate(size uint64) []byte {
	a := m.owner
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.freed || size > m.limit || size > uint64(len(m.buf)) {
		if size == 0 && !m.freed {
			return []byte{}
		}
		a.refused.Add(1)
		return nil
	}
	if size > m.committed {
		newCommitted := roundUp(size, osPageSize())
		if newCommitted > uint64(len(m.buf)) {
			newCommitted = uint64(len(m.buf))
		}
		if err := m.commit(m.committed, newCommitted); err != nil {
			a.refused.Add(1)
			return nil
		}
		m.committed = newCommitted
		if a.live == m {
			a.committed.Store(newCommitted)
		}
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory. It is safe to call more than once.
func (m *linearMemory) Free() {
	a := m.owner
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.freed {
		return
	}
	m.freed = true
	m.release()
	m.buf = nil
	m.committed = 0
	if a.live == m {
		a.live = nil
		a.committed.Store(0)
	}
}

func roundUp(n, to uint64) uint64 {
	return (n + to - 1) / to * to
}
