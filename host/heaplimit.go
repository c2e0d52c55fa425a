package host

import (
	"os"
	"runtime/debug"
	"sync"
)

// HeapLimitBase is the Go memory the process needs besides its tasks'
// host shares (runtime, stacks, the registry, idle buffers); LimitHeap keeps
// the soft memory limit at this plus the shares of the running tasks.
const HeapLimitBase = 16 << 20

// heapBudget is the process-wide soft memory limit that follows the leases
// of the tasks running under Options.LimitHeap. debug.SetMemoryLimit is
// process-wide, so hosts share one budget.
var heapBudget struct {
	mu       sync.Mutex
	shares   int64
	tasks    int
	previous int64 // the limit before the first task, restored when none runs
}

// heapLimitFromEnv reports whether GOMEMLIMIT was set: the operator's limit
// wins over LimitHeap.
var heapLimitFromEnv = os.Getenv("GOMEMLIMIT") != ""

// reserveHeap raises the limit by share for one task and returns the
// function that lowers it again.
func reserveHeap(share int64) func() {
	if heapLimitFromEnv {
		return func() {}
	}
	heapBudget.mu.Lock()
	if heapBudget.tasks == 0 {
		heapBudget.previous = debug.SetMemoryLimit(-1)
	}
	heapBudget.tasks++
	heapBudget.shares += share
	debug.SetMemoryLimit(HeapLimitBase + heapBudget.shares)
	heapBudget.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			heapBudget.mu.Lock()
			defer heapBudget.mu.Unlock()
			heapBudget.tasks--
			heapBudget.shares -= share
			if heapBudget.tasks == 0 {
				debug.SetMemoryLimit(heapBudget.previous)
				return
			}
			debug.SetMemoryLimit(HeapLimitBase + heapBudget.shares)
		})
	}
}
