package host

import "github.com/compacthost/compacthost/host/internal/capalloc"

// defaultAllocator caps an instance's linear memory at capBytes.
func defaultAllocator(capBytes uint64) Allocator { return capalloc.New(capBytes) }
