package host

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// gatedMix is the mix strategy stopping before batch after+1 until
// release is closed (reached is closed when it stops); slow, if set, is
// slept before every batch.
type gatedMix struct {
	*mixstrategy.Strategy
	after   int
	seen    int
	slow    time.Duration
	reached chan struct{}
	release chan struct{}
}

func (g *gatedMix) Batch(b *sdk.Batch, out sdk.Emitter) error {
	time.Sleep(g.slow)
	if g.seen++; g.seen == g.after+1 && g.reached != nil {
		close(g.reached)
		<-g.release
	}
	return g.Strategy.Batch(b, out)
}

// waitAdded polls store until it holds a key before lacks, for up to 10 s.
func waitAdded(t *testing.T, store objstore.Store, before map[string][]byte) []string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if d := diffSnapshots(before, snapshot(t, store)); len(d) > 0 {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the task wrote nothing")
	return nil
}

// hostExecutor returns an executor on a Host whose store holds a small
// generated collection, and the collection's mix plan with many outputs.
func hostExecutor(t *testing.T, seed int64, cfg ExecutorConfig) (*Executor, *Host, objstore.Store, *datapb.CompactionPlan) {
	t.Helper()
	store := objstoretest.Local(t)
	plan := generate(t, store, smallGen(seed)).MixPlan
	manyOutputs(t, plan)
	h := newTestHost(t, store, 0, func(o *Options) { o.BatchRows = 300 })
	e, err := NewExecutor(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e, h, store, plan
}

// TestExecutorDropMidRun: Drop of a task that has written outputs cancels
// it, waits for its cleanup and forgets it: the store is as before, the
// pool empty, the plan can be submitted again.
func TestExecutorDropMidRun(t *testing.T) {
	ctx := context.Background()
	e, h, store, plan := hostExecutor(t, 21, ExecutorConfig{Workers: 1})
	before := snapshot(t, store)
	gate := &gatedMix{Strategy: mixstrategy.New(), after: 12, reached: make(chan struct{}), release: make(chan struct{})}
	if err := e.Submit(ctx, "drop-me", plan, Native(gate)); err != nil {
		t.Fatal(err)
	}
	<-gate.reached
	added := waitAdded(t, store, before)
	dropped := make(chan error, 1)
	go func() { dropped <- e.Drop(ctx, "drop-me") }()
	for {
		if _, ok := e.Get("drop-me"); !ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-dropped:
		t.Fatalf("Drop returned (%v) before the run did", err)
	default:
	}
	if err := e.Submit(ctx, "again", plan, Native(mixstrategy.New())); !errors.Is(err, ErrDuplicatePlan) ||
		!strings.Contains(err.Error(), "is already being dropped as task drop-me") {
		t.Fatalf("resubmitting while the drop winds down: %v", err)
	}
	close(gate.release)
	if err := <-dropped; err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(before, snapshot(t, store)); len(d) > 0 {
		t.Fatalf("the dropped task left %v (it had written %d objects)", d, len(added))
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d after the drop", u)
	}
	if st := e.Stats(); st.Finished[TaskCancelled] != 1 || st.Running != 0 || e.Slots().InUse != 0 {
		t.Fatalf("stats after the drop %+v", st)
	}
	if err := e.Drop(ctx, "drop-me"); err != nil {
		t.Fatalf("dropping again: %v", err)
	}
	if err := e.Submit(ctx, "again", plan, Native(mixstrategy.New())); err != nil {
		t.Fatal(err)
	}
	info := mustWait(t, e, "again")
	if info.State != TaskCompleted {
		t.Fatalf("rerun %s: %v", info.State, info.Err)
	}
	checkMix(t, store, plan, info.Result, info.Progress)
}

// TestExecutorTimeoutRealHost: a run past the executor's task timeout
// fails with cause timeout, an error saying so, a failed payload, and
// leaves nothing behind.
func TestExecutorTimeoutRealHost(t *testing.T) {
	ctx := context.Background()
	e, _, store, plan := hostExecutor(t, 22, ExecutorConfig{Workers: 1, TaskTimeout: 300 * time.Millisecond})
	before := snapshot(t, store)
	if err := e.Submit(ctx, "slow", plan, Native(&gatedMix{Strategy: mixstrategy.New(), slow: 50 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	info := mustWait(t, e, "slow")
	if info.State != TaskFailed || info.Cause != "timeout" || !errors.Is(info.Err, ErrTaskTimeout) || !errors.Is(info.Err, ErrDeadline) ||
		!strings.Contains(info.Err.Error(), "): task slow: executor task timeout exceeded (300ms), noticed in stage ") {
		t.Fatalf("timed out task: %s, cause %q: %v", info.State, info.Cause, info.Err)
	}
	failedPayload(t, info, plan)
	if d := diffSnapshots(before, snapshot(t, store)); len(d) > 0 {
		t.Fatalf("the timed out task left %v", d)
	}
}

// TestExecutorStress: many goroutines submitting, reading, cancelling and
// dropping at once (run with -race). Every task ends exactly once, final
// tasks always carry a payload, and nothing is held at the end.
func TestExecutorStress(t *testing.T) {
	run := func(ctx context.Context, plan *datapb.CompactionPlan, rep TaskReporter, _ ...CompactOption) (*datapb.CompactionPlanResult, error) {
		rep.Progress(Progress{RowsRead: plan.GetPlanID()})
		select {
		case <-time.After(time.Duration(plan.GetPlanID()%3) * time.Millisecond):
			return okResult(plan), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e, err := NewExecutor(nil, ExecutorConfig{Run: run, Validate: noValidation, Workers: 4, Queue: 8, History: 50, TaskTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, perG = 8, 60
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range perG {
				n := int64(g*perG + i + 1)
				id := strconv.FormatInt(n, 10)
				err := e.Submit(context.Background(), id, fakePlan(n))
				for try := 0; errors.Is(err, ErrQueueFull) && try < 100; try++ {
					time.Sleep(200 * time.Microsecond)
					err = e.Submit(context.Background(), id, fakePlan(n))
				}
				if err != nil && !errors.Is(err, ErrQueueFull) {
					t.Errorf("submit %s: %v", id, err)
					return
				}
				if err := e.Submit(context.Background(), id, fakePlan(n)); err != nil && !errors.Is(err, ErrQueueFull) {
					t.Errorf("resubmit %s: %v", id, err)
				}
				other := strconv.Itoa(g*perG + max(i-rng.IntN(4), 0) + 1) // this task or a recent one
				switch rng.IntN(4) {
				case 0:
					e.Cancel(other)
				case 1:
					if err := e.Drop(context.Background(), other); err != nil {
						t.Errorf("drop %s: %v", other, err)
					}
				}
				if info, ok := e.Get(other); ok && info.State.Done() && info.Result == nil {
					t.Errorf("final task %s (%s) without a payload", other, info.State)
				}
				e.Slots()
				e.Tasks(5)
			}
		}()
	}
	wg.Wait()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	var final int64
	for _, n := range st.Finished {
		final += n
	}
	var accepted int64
	for _, n := range st.Submitted {
		accepted += n
	}
	if st.Queued != 0 || st.Running != 0 || final != accepted || e.Slots().InUse != 0 {
		t.Fatalf("after close: %d queued, %d running, %d final of %d accepted, slots %+v", st.Queued, st.Running, final, accepted, e.Slots())
	}
	for _, info := range e.Tasks(0) {
		if !info.State.Done() || info.Result == nil || info.Result.GetPlanID() != info.PlanID {
			t.Fatalf("task %s after close: %s, result %v", info.ID, info.State, info.Result)
		}
	}
	if len(e.Tasks(0)) > 50 {
		t.Fatalf("%d tasks known, history is 50", len(e.Tasks(0)))
	}
	t.Logf("%d accepted, finished %v, rejected %v", accepted, st.Finished, st.Rejected)
}
