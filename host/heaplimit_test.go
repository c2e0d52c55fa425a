package host

import (
	"context"
	"math"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// The limit is the base plus the shares of the tasks running, whatever the
// order they end in, and the limit from before the first task comes back
// when the last one ends.
func TestReserveHeapFollowsTasks(t *testing.T) {
	if heapLimitFromEnv {
		t.Skip("GOMEMLIMIT is set: LimitHeap leaves the limit alone")
	}
	before := debug.SetMemoryLimit(-1)
	debug.SetMemoryLimit(5 << 30)
	defer debug.SetMemoryLimit(before)

	a := reserveHeap(100 << 20)
	if got := currentHeapLimit(); got != HeapLimitBase+100<<20 {
		t.Fatalf("one task: limit %d, want %d", got, HeapLimitBase+100<<20)
	}
	b := reserveHeap(30 << 20)
	if got := currentHeapLimit(); got != HeapLimitBase+130<<20 {
		t.Fatalf("two tasks: limit %d, want %d", got, HeapLimitBase+130<<20)
	}
	a()
	a() // releasing twice counts once
	if got := currentHeapLimit(); got != HeapLimitBase+30<<20 {
		t.Fatalf("after the first ends: limit %d, want %d", got, HeapLimitBase+30<<20)
	}
	b()
	if got := currentHeapLimit(); got != 5<<30 {
		t.Fatalf("after the last ends: limit %d, want the earlier 5 GiB", got)
	}

	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { reserveHeap(1 << 20)() })
	}
	wg.Wait()
	if got := currentHeapLimit(); got != 5<<30 || heapBudget.tasks != 0 || heapBudget.shares != 0 {
		t.Fatalf("after concurrent tasks: limit %d, %d tasks, %d bytes", got, heapBudget.tasks, heapBudget.shares)
	}
}

// With LimitHeap a task runs under base + its host share (+ the data part
// of a native strategy's grant), and the limit from before comes back.
func TestCompactLimitHeap(t *testing.T) {
	if heapLimitFromEnv {
		t.Skip("GOMEMLIMIT is set: LimitHeap leaves the limit alone")
	}
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(3))
	var during, used []int64
	var pr progressRecorder
	var h *Host
	h = newTestHost(t, store, 0, func(o *Options) {
		o.LimitHeap = true
		o.Progress = func(p Progress) {
			pr.record(p)
			during = append(during, currentHeapLimit())
			used = append(used, h.Pool().Stats().Used)
		}
	})
	res, err := h.Compact(context.Background(), col.MixPlan, Native(mixstrategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkMix(t, store, col.MixPlan, res, pr.final())
	// a native strategy's grant counts without the wasm base it reserves
	guestBase := int64(mempool.DefaultGuestMinBytes + mempool.DefaultGuestRuntimeBytes)
	if len(during) == 0 || during[0] != HeapLimitBase+used[0]-guestBase {
		t.Fatalf("limit during the task %v, want base + the lease (%v) - the wasm guest base %d", during, used, guestBase)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit after the task %d, want %d", got, before)
	}
}

// currentHeapLimit returns the Go runtime's soft memory limit, -1 for none.
func currentHeapLimit() int64 {
	l := debug.SetMemoryLimit(-1)
	if l == math.MaxInt64 {
		return -1
	}
	return l
}
