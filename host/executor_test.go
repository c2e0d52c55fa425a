package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/mempool"
)

// fakeRun is a RunFunc the test steers: each run is announced on started
// and ends with what the test sends on release (an error, a result, or a
// func that panics) or when its context ends.
type fakeRun struct {
	started chan int64
	release chan any
	mu      sync.Mutex
	runs    map[int64]int
}

func newFakeRun() *fakeRun {
	return &fakeRun{started: make(chan int64, 100), release: make(chan any), runs: map[int64]int{}}
}

func (f *fakeRun) run(ctx context.Context, plan *datapb.CompactionPlan, rep TaskReporter, _ ...CompactOption) (*datapb.CompactionPlanResult, error) {
	f.mu.Lock()
	f.runs[plan.GetPlanID()]++
	f.mu.Unlock()
	rep.Plugin(PluginID{Name: "mix", Version: "1.0.0"})
	rep.Progress(Progress{PlanID: plan.GetPlanID(), RowsRead: 100, RowsWritten: 90})
	f.started <- plan.GetPlanID()
	select {
	case out := <-f.release:
		switch v := out.(type) {
		case error:
			return nil, v
		case *datapb.CompactionPlanResult:
			return v, nil
		case func():
			v()
		}
		return okResult(plan), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("plan %d: %w", plan.GetPlanID(), ctx.Err())
	}
}

func (f *fakeRun) count(plan int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[plan]
}

func okResult(plan *datapb.CompactionPlan) *datapb.CompactionPlanResult {
	return &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed, Type: plan.GetType(),
		Channel: plan.GetChannel(), Segments: []*datapb.CompactionSegment{{SegmentID: 9001, NumOfRows: 90}}}
}

// fakePlan is a plan the fake runs (the tests skip validation): output
// segment IDs [1000*id, 1000*id+100) and log IDs [1e6*id, 1e6*id+100).
func fakePlan(id int64) *datapb.CompactionPlan {
	return &datapb.CompactionPlan{PlanID: id, Type: datapb.CompactionType_MixCompaction, Channel: "ch-1", SlotUsage: 4,
		SegmentBinlogs:         []*datapb.CompactionSegmentBinlogs{{SegmentID: 1}},
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: 1000 * id, End: 1000*id + 100},
		PreAllocatedLogIDs:     &datapb.IDRange{Begin: 1_000_000 * id, End: 1_000_000*id + 100}}
}

func noValidation(*datapb.CompactionPlan) error { return nil }

// newFakeExecutor returns an executor on a fake run, closed at cleanup.
func newFakeExecutor(t *testing.T, cfg ExecutorConfig) (*Executor, *fakeRun) {
	t.Helper()
	f := newFakeRun()
	cfg.Run = f.run
	if cfg.Validate == nil {
		cfg.Validate = noValidation
	}
	e, err := NewExecutor(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e.Close(ctx)
	})
	return e, f
}

func mustSubmit(t *testing.T, e *Executor, id string, plan *datapb.CompactionPlan) {
	t.Helper()
	if err := e.Submit(context.Background(), id, plan); err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
}

func mustWait(t *testing.T, e *Executor, id string) TaskInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// failedPayload checks that a final task that did not complete carries
// {PlanID, failed, Type, Channel}.
func failedPayload(t *testing.T, info TaskInfo, plan *datapb.CompactionPlan) {
	t.Helper()
	want := &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_failed, Type: plan.GetType(), Channel: plan.GetChannel()}
	if !proto.Equal(info.Result, want) {
		t.Fatalf("task %s (%s) result %v, want %v", info.ID, info.State, info.Result, want)
	}
}

// TestExecutorStates: every way a task ends, its state, the state DataCoord
// would see, the cause and the result payload.
func TestExecutorStates(t *testing.T) {
	cases := []struct {
		name   string
		end    func(e *Executor, f *fakeRun, id string)
		state  TaskState
		milvus datapb.CompactionTaskState
		cause  string
		err    string
	}{
		{"completed", func(_ *Executor, f *fakeRun, _ string) { f.release <- nil }, TaskCompleted, datapb.CompactionTaskState_completed, "", ""},
		{"failed", func(_ *Executor, f *fakeRun, _ string) {
			f.release <- &TaskError{Plugin: PluginID{Name: "mix", Version: "1.0.0"}, Op: "compact_v1_batch", Kind: ErrTrap, Message: "unreachable"}
		}, TaskFailed, datapb.CompactionTaskState_failed, "trap", "plugin mix@1.0.0: compact_v1_batch: wasm trap: unreachable"},
		{"panic", func(_ *Executor, f *fakeRun, _ string) { f.release <- func() { panic("bug") } },
			TaskFailed, datapb.CompactionTaskState_failed, "internal", "compactor panicked: plan 7: bug"},
		{"no result", func(_ *Executor, f *fakeRun, _ string) { f.release <- (*datapb.CompactionPlanResult)(nil) },
			TaskFailed, datapb.CompactionTaskState_failed, "error", "plan 7: compactor returned no result and no error"},
		{"foreign result", func(_ *Executor, f *fakeRun, _ string) { f.release <- okResult(fakePlan(8)) },
			TaskFailed, datapb.CompactionTaskState_failed, "error", "plan 7: compactor returned the result of plan 8"},
		{"cancelled", func(e *Executor, _ *fakeRun, id string) {
			if !e.Cancel(id) {
				panic("Cancel found no active task")
			}
		}, TaskCancelled, datapb.CompactionTaskState_failed, "canceled", "task cancelled: task t7: plan 7: context canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1})
			plan := fakePlan(7)
			mustSubmit(t, e, "t7", plan)
			<-f.started
			info, ok := e.Get("t7")
			if !ok || info.State != TaskRunning || info.State.CompactionState() != datapb.CompactionTaskState_executing ||
				info.Result != nil || info.Plugin.Name != "mix" || info.Progress.RowsRead != 100 || info.Started.IsZero() {
				t.Fatalf("while running: %+v", info)
			}
			c.end(e, f, "t7")
			info = mustWait(t, e, "t7")
			if info.State != c.state || info.State.CompactionState() != c.milvus || info.Cause != c.cause || info.Finished.IsZero() {
				t.Fatalf("final %s / %s / cause %q, want %s / %s / %q", info.State, info.State.CompactionState(), info.Cause, c.state, c.milvus, c.cause)
			}
			if c.state == TaskCompleted {
				if info.Err != nil || !proto.Equal(info.Result, okResult(plan)) {
					t.Fatalf("completed: err %v, result %v", info.Err, info.Result)
				}
			} else {
				if info.Err == nil || info.Err.Error() != c.err {
					t.Fatalf("error %v, want %q", info.Err, c.err)
				}
				failedPayload(t, info, plan)
			}
			st := e.Stats()
			if st.Finished[c.state] != 1 || st.Running != 0 || st.Progress.RowsRead != 100 || st.Submitted["MixCompaction"] != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestExecutorCancelQueued: a queued task cancelled ends at once, is never
// run, and frees its place in the queue.
func TestExecutorCancelQueued(t *testing.T) {
	e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1, Queue: 1})
	mustSubmit(t, e, "a", fakePlan(1))
	<-f.started
	mustSubmit(t, e, "b", fakePlan(2))
	if !e.Cancel("b") || e.Cancel("b") {
		t.Fatal("Cancel of a queued task must report true once, then false")
	}
	info, _ := e.Get("b")
	if info.State != TaskCancelled || !errors.Is(info.Err, ErrTaskCancelled) || !info.Started.IsZero() {
		t.Fatalf("cancelled queued task %+v", info)
	}
	failedPayload(t, info, fakePlan(2))
	mustSubmit(t, e, "c", fakePlan(3)) // the queue has room again
	f.release <- nil
	<-f.started
	f.release <- nil
	mustWait(t, e, "c")
	if f.count(2) != 0 {
		t.Fatal("the cancelled task ran")
	}
}

// TestExecutorSubmitRules: idempotency by task ID, conflicts, duplicate
// plan IDs, overlapping ranges, validation, the history bound.
func TestExecutorSubmitRules(t *testing.T) {
	ctx := context.Background()
	e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1, Queue: 4, History: 2})
	plan := fakePlan(5)
	mustSubmit(t, e, "5", plan)
	<-f.started
	changed := fakePlan(5)
	changed.Channel = "ch-2"
	overlapping := fakePlan(6)
	overlapping.PreAllocatedLogIDs = &datapb.IDRange{Begin: 5_000_050, End: 5_000_150}
	cases := []struct {
		id   string
		plan *datapb.CompactionPlan
		is   error
		want string
	}{
		{"5", proto.Clone(plan).(*datapb.CompactionPlan), nil, ""},
		{"5", changed, ErrTaskConflict, "task ID already holds a different plan: task 5 is plan 5 (running); plan 5 cannot reuse its ID"},
		{"other", plan, ErrDuplicatePlan, "duplicate plan: plan 5 is already running as task 5"},
		{"6", overlapping, ErrOutputRangesInUse, "plan 6: pre_allocated_logIDs [5000050, 5000150) overlaps plan 5's [5000000, 5000100)"},
		{"", plan, nil, "host: executor: plan 5: empty task ID"},
	}
	for _, c := range cases {
		err := e.Submit(ctx, c.id, c.plan)
		if (c.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)))) {
			t.Errorf("Submit(%q, plan %d) = %v, want %q", c.id, c.plan.GetPlanID(), err, c.want)
		}
	}
	f.release <- nil
	mustWait(t, e, "5")
	if err := e.Submit(ctx, "5", plan); err != nil { // still idempotent once completed
		t.Fatal(err)
	}
	if f.count(5) != 1 {
		t.Fatalf("plan 5 ran %d times", f.count(5))
	}
	mustSubmit(t, e, "6", overlapping) // the ranges are free again
	<-f.started
	f.release <- errors.New("boom")
	mustWait(t, e, "6")
	mustSubmit(t, e, "7", fakePlan(7))
	<-f.started
	f.release <- nil
	mustWait(t, e, "7")
	if _, ok := e.Get("5"); ok {
		t.Fatal("history 2 still knows the oldest of three final tasks")
	}
	if got := e.Tasks(0); len(got) != 2 || got[0].ID != "7" || got[1].ID != "6" {
		t.Fatalf("Tasks = %+v", got)
	}
	if got := e.Tasks(0, TaskFailed); len(got) != 1 || got[0].ID != "6" {
		t.Fatalf("failed tasks = %+v", got)
	}
	st := e.Stats()
	if st.Rejected["task_conflict"] != 1 || st.Rejected["duplicate"] != 1 || st.Rejected["ranges_in_use"] != 1 || st.Failures["error"] != 1 {
		t.Fatalf("stats %+v", st)
	}

	v, _ := newFakeExecutor(t, ExecutorConfig{Validate: ValidatePlan})
	if err := v.Submit(ctx, "1", fakePlan(1)); !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("an invalid plan: %v, want ErrInvalidPlan", err)
	}
}

// TestExecutorQueueFullAndSlots: the queue bound and the slot report.
func TestExecutorQueueFullAndSlots(t *testing.T) {
	pool, err := mempool.NewPool(4 << 30)
	if err != nil {
		t.Fatal(err)
	}
	e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1, Queue: 1, Pool: pool})
	if s := e.Slots(); s != (Slots{Capacity: 8, Free: 8}) {
		t.Fatalf("idle slots %+v", s)
	}
	mustSubmit(t, e, "1", fakePlan(1))
	<-f.started
	if s := e.Slots(); s != (Slots{Capacity: 8, InUse: 4, Free: 4}) {
		t.Fatalf("slots with one task %+v", s)
	}
	lease, err := pool.PreFetch(context.Background(), "other", 3<<30+256<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.FreeSlots(); got != 1 { // 768 MiB free in the pool
		t.Fatalf("free slots with the pool nearly full %d, want 1", got)
	}
	pool.Return(lease)
	mustSubmit(t, e, "2", fakePlan(2))
	err = e.Submit(context.Background(), "3", fakePlan(3))
	if !errors.Is(err, ErrQueueFull) || err.Error() != "queue full: 1 plans waiting and 1 running" {
		t.Fatalf("third plan: %v", err)
	}
	if s := e.Slots(); s != (Slots{Capacity: 8, InUse: 8}) {
		t.Fatalf("slots with the queue full %+v", s)
	}
	f.release <- nil
	<-f.started
	f.release <- nil
	mustWait(t, e, "2")
	if s := e.Slots(); s != (Slots{Capacity: 8, Free: 8}) {
		t.Fatalf("slots after both %+v", s)
	}

	capped, _ := newFakeExecutor(t, ExecutorConfig{Pool: pool, MaxSlots: 2, SlotMemory: 1 << 30})
	if s := capped.Slots(); s != (Slots{Capacity: 2, Free: 2}) {
		t.Fatalf("capped slots %+v", s)
	}
	noPool, _ := newFakeExecutor(t, ExecutorConfig{MaxSlots: 3})
	if s := noPool.Slots(); s != (Slots{Capacity: 3, Free: 3}) {
		t.Fatalf("slots without a pool %+v", s)
	}
}

// TestExecutorClose: queued tasks fail at once, running ones finish
// while ctx lasts and are cancelled after; every one has a payload.
func TestExecutorClose(t *testing.T) {
	e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1, Queue: 2})
	mustSubmit(t, e, "a", fakePlan(1))
	<-f.started
	mustSubmit(t, e, "b", fakePlan(2))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := e.Get("a")
	if a.State != TaskFailed || a.Cause != "shutdown" || a.Err.Error() != "cancelled by server shutdown: plan 1: context deadline exceeded" &&
		a.Err.Error() != "cancelled by server shutdown: plan 1: context canceled" {
		t.Fatalf("running task at close: %+v", a)
	}
	failedPayload(t, a, fakePlan(1))
	b, _ := e.Get("b")
	if b.State != TaskFailed || b.Cause != "shutdown" || !errors.Is(b.Err, ErrShutdownQueued) {
		t.Fatalf("queued task at close: %+v", b)
	}
	failedPayload(t, b, fakePlan(2))
	if err := e.Submit(context.Background(), "c", fakePlan(3)); !errors.Is(err, ErrExecutorClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	if err := e.Submit(context.Background(), "a", fakePlan(1)); err != nil {
		t.Fatalf("a known task stays idempotent after close: %v", err)
	}
	if e.FreeSlots() != 0 || !e.Closing() {
		t.Fatal("a closed executor offers slots")
	}
}

// TestExecutorTimeoutFake: the executor's own timeout fails a run that
// ignores none of its context, with cause timeout and a payload.
func TestExecutorTimeoutFake(t *testing.T) {
	e, f := newFakeExecutor(t, ExecutorConfig{Workers: 1, TaskTimeout: 10 * time.Millisecond})
	mustSubmit(t, e, "11", fakePlan(11))
	<-f.started
	info := mustWait(t, e, "11")
	if info.State != TaskFailed || info.Cause != "timeout" || !errors.Is(info.Err, ErrTaskTimeout) || info.Err.Error() != "plan 11: context deadline exceeded" {
		t.Fatalf("timed out task %+v", info)
	}
	failedPayload(t, info, fakePlan(11))
}

func TestNewExecutorRejectsBadConfig(t *testing.T) {
	if _, err := NewExecutor(nil, ExecutorConfig{}); err == nil || err.Error() != "host: executor: a Host or ExecutorConfig.Run is required" {
		t.Fatalf("nothing to run on: %v", err)
	}
	if _, err := NewExecutor(nil, ExecutorConfig{Run: newFakeRun().run, Queue: -1}); err == nil || !strings.Contains(err.Error(), "queue -1") {
		t.Fatalf("negative queue: %v", err)
	}
}
