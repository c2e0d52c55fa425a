//go:build unix

package mempool

import (
	"os"

	"golang.org/x/sys/unix"
)

func osPageSize() uint64 { return uint64(os.Getpagesize()) }

// reserve maps n bytes (rounded up to the OS page size) of inaccessible,
// private anonymous memory. On failure the reservation stays empty and every
// grow is refused.
func (m *linearMemory) reserve(n uint64) {
	n = roundUp(n, osPageSize())
	if n == 0 || n > uint64(int(^uint(0)>>1)) {
		return
	}
	buf, err := unix.Mmap(-1, 0, int(n), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return
	}
	m.buf = buf
}

// commit makes buf[from:to] readable and writable.
func (m *linearMemory) commit(from, to uint64) error {
	if to <= from {
		return nil
	}
	return unix.Mprotect(m.buf[from:to], unix.PROT_READ|unix.PROT_WRITE)
}

// release unmaps the reservation.
func (m *linearMemory) release() {
	if m.buf != nil {
		_ = unix.Munmap(m.buf)
	}
}
