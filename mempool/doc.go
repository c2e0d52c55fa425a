// Package mempool decides how much memory compaction may use and hands it
// out as leases.
//
// # Pool and leases
//
// A [Pool] has a total in bytes. [Pool.PreFetch] asks for a lease of a size
// on behalf of an owner (a plan, a task) and blocks until the lease is granted
// or its context ends; [Pool.TryPreFetch] never blocks. [Pool.Return] gives a
// lease back. The rules:
//
//   - A size that is zero or negative fails with [ErrInvalidSize]. A size
//     above the pool's current total fails at once with [ErrTooLarge]; the
//     error states both numbers.
//   - Returning a lease twice, returning nil or a lease of another pool fails
//     with [ErrNotHeld] and credits nothing.
//   - [Pool.Shrink] and [Pool.Grow] change the total ([Pool.SetTotal] picks
//     the verb). A granted lease is never revoked: after a shrink below
//     current use, nothing new is granted until use has drained under the new
//     total. Waiters that can no longer fit under a shrunk total fail with
//     ErrTooLarge.
//   - [Lease.Grow] enlarges a held lease, for a retry after the strategy ran
//     out of memory. Lease growth is served ahead of waiting PreFetch calls,
//     since the task that grows holds memory that new tasks may be waiting
//     for.
//   - If a context ends while waiting, the call fails with an error wrapping
//     ctx.Err() and holds nothing, even if a grant raced with the end.
//
// # Fairness: FIFO with bounded bypass
//
// Waiters are served in arrival order (lease growth first, then PreFetch). A
// waiter that does not fit in the free memory does not block the ones behind
// it: a later, smaller request that fits is granted and counts one bypass
// against every waiter it overtook. Once a waiter has been bypassed
// MaxBypass times ([DefaultMaxBypass] = 8, see [WithMaxBypass]), the queue is
// closed behind it: nothing that arrives or waits after it is granted until
// it is served. From then on no new lease is granted (running leases may
// still grow, which is how a task retries after running out of memory), so
// once the leases that existed at that point have been returned the waiter
// fits, provided it fits the total. A request therefore waits for at most
// MaxBypass overtakes plus the lifetime of the leases granted before the
// queue closed; it cannot be starved by a stream of small requests.
// MaxBypass 0 makes the pool strictly FIFO. Since growth waiters queue ahead
// of all PreFetch waiters, a granted growth counts as a bypass only for the
// growth waiters it overtook; a granted PreFetch counts for both kinds.
//
// # Observability
//
// [Pool.Stats] returns the total, used and available bytes, the number of
// leases and waiters, and bytes and leases per owner. [Pool.Subscribe]
// delivers the latest Stats after every change on a channel that never blocks
// the pool.
//
// # Policies
//
// A [Policy] gives the pool a fraction of a node budget: [StaticPolicy] a
// fixed one, [WindowPolicy] one per daily window of local time in a time
// zone. A [LoadPolicy] caps either at a share of the memory the machine or
// the process's cgroup has available, read from a [MemorySource]
// ([SystemMemory] on Linux). [ParsePolicy] reads them from strings like
// "static:0.5", "window:08:00-22:00=0.2,default=0.8,tz=Europe/Berlin",
// "load:0.5,min=1GiB" or "window:08:00-22:00=0.2,default=0.8;load:0.5". A
// [Controller] applies a policy to a pool, calling Grow or Shrink at window
// edges and, for a load policy, when the available memory moves past the
// hysteresis; its [Clock] and MemorySource are injectable.
//
// [Pool.Stats] reports Available (total minus used), the memory a scheduler
// can count free slots from.
//
// # Estimation
//
// [Estimate] computes a compaction plan's memory from its schema, row and
// delete counts, log sizes and the batch size, split into the strategy's
// share (the cap for its wasm linear memory) and the host's in-flight
// buffers. The lease to request is their sum.
//
// # The memory wall for strategies
//
// [MemoryAllocator] implements wazero's experimental.MemoryAllocator: it
// reserves the strategy share with mmap(PROT_NONE), commits pages with
// mprotect as the guest grows, refuses growth past the share (the guest's
// memory.grow returns -1), never moves the buffer, and keeps the memory
// outside the Go heap.
package mempool
