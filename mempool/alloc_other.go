//go:build !unix

package mempool

// On systems without mmap/mprotect the reservation is a Go heap buffer of the
// full cap, allocated once so it never moves; commit only does accounting.

func osPageSize() uint64 { return 4096 }

func (m *linearMemory) reserve(n uint64) {
	if n == 0 || n > uint64(int(^uint(0)>>1)) {
		return
	}
	m.buf = make([]byte, n)
}

func (m *linearMemory) commit(from, to uint64) error { return nil }

func (m *linearMemory) release() {}
