package host

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// exampleExecutor generates a small collection in a temporary local store
// and returns an executor on a Host with a 1 GiB pool, the collection, and
// a cleanup.
func exampleExecutor(ctx context.Context, ecfg ExecutorConfig) (*Executor, *gen.Collection, func(), error) {
	dir, err := os.MkdirTemp("", "executor-example-")
	if err != nil {
		return nil, nil, nil, err
	}
	done := func() { os.RemoveAll(dir) }
	store, err := objstore.NewLocal(dir)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim = 3, 2000, 16
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	h, err := New(ctx, Options{Store: store, MemoryBytes: 1 << 30})
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	e, err := NewExecutor(h, ecfg)
	if err != nil {
		h.Close(ctx)
		done()
		return nil, nil, nil, err
	}
	return e, col, func() { e.Close(ctx); h.Close(ctx); done() }, nil
}

// ExampleExecutor queues a plan under its plan ID (as a DataNode does for
// DataCoord's CreateTask), waits for it and reads the result. A front end
// that polls instead calls Get until the state is final.
func ExampleExecutor() {
	ctx := context.Background()
	e, col, cleanup, err := exampleExecutor(ctx, ExecutorConfig{Workers: 2, Queue: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	fmt.Printf("slots: %+v\n", e.Slots()) // 1 GiB pool, 512 MiB per slot

	plan := col.MixPlan
	id := strconv.FormatInt(plan.GetPlanID(), 10)
	// Native links the bundled strategy in-process; without it the Host's
	// plugin registry chooses.
	if err := e.Submit(ctx, id, plan, Native(mixstrategy.New())); err != nil {
		fmt.Println(err)
		return
	}
	// A second CreateTask for the same plan changes nothing.
	fmt.Println("resubmit:", e.Submit(ctx, id, plan, Native(mixstrategy.New())))

	info, err := e.Wait(ctx, id)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.State, info.State.CompactionState(), info.Result.GetState())
	for _, s := range info.Result.GetSegments() {
		fmt.Printf("segment %d: %d rows\n", s.GetSegmentID(), s.GetNumOfRows())
	}
	fmt.Printf("read %d rows, wrote %d\n", info.Progress.RowsRead, info.Progress.RowsWritten)
	// Output:
	// slots: {Capacity:2 InUse:0 Free:2}
	// resubmit: <nil>
	// completed completed completed
	// segment 450000000100000000: 4869 rows
	// read 6000 rows, wrote 4869
}

// ExampleExecutor_Cancel cancels a running task: its run is stopped, what
// it wrote is deleted, and it ends cancelled, reported to DataCoord as
// failed with a result payload. Drop would also forget it.
func ExampleExecutor_Cancel() {
	ctx := context.Background()
	e, col, cleanup, err := exampleExecutor(ctx, ExecutorConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	// A strategy that stops at its second batch until released, so the
	// task is surely running when it is cancelled.
	gate := &gatedMix{Strategy: mixstrategy.New(), after: 1, reached: make(chan struct{}), release: make(chan struct{})}
	if err := e.Submit(ctx, "t1", col.MixPlan, Native(gate)); err != nil {
		fmt.Println(err)
		return
	}
	<-gate.reached
	info, _ := e.Get("t1")
	fmt.Println(info.State)
	fmt.Println("cancelled:", e.Cancel("t1"))
	close(gate.release)

	info, err = e.Wait(ctx, "t1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.State, info.Cause, info.Result.GetState())
	fmt.Println("cancelled again:", e.Cancel("t1"))
	fmt.Println("drop:", e.Drop(ctx, "t1"))
	_, known := e.Get("t1")
	fmt.Println("known:", known)
	// Output:
	// running
	// cancelled: true
	// cancelled canceled failed
	// cancelled again: false
	// drop: <nil>
	// known: false
}
