package host

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/mempool"
)

// Defaults of ExecutorConfig's zero values.
const (
	DefaultExecutorWorkers = 2
	DefaultExecutorQueue   = 16
	DefaultExecutorHistory = 1000
	DefaultCancelGrace     = 10 * time.Second
	// DefaultSlotMemory is the pool memory behind one slot: a Milvus
	// DataNode counts 16 slots per 8 GiB (dataNode.workerSlotUnit).
	DefaultSlotMemory = 512 << 20
)

// Submit's refusals. Each error wraps exactly one of them.
var (
	// ErrQueueFull: Queue tasks already wait for a worker; retry later.
	ErrQueueFull = errors.New("queue full")
	// ErrExecutorClosed: Close has begun; submit to another worker.
	ErrExecutorClosed = errors.New("server is shutting down")
	// ErrDuplicatePlan: another task ID holds the plan ID, queued or running.
	ErrDuplicatePlan = errors.New("duplicate plan")
	// ErrTaskConflict: the task ID is known with a different plan.
	ErrTaskConflict = errors.New("task ID already holds a different plan")
)

// Task outcomes the executor itself causes. Each failed task's error wraps
// at most one of them.
var (
	// ErrShutdownQueued: Close began before the task started.
	ErrShutdownQueued = errors.New("server shut down before the task started")
	// ErrShutdownCancelled: Close ran out of patience and cancelled the run.
	ErrShutdownCancelled = errors.New("cancelled by server shutdown")
	// ErrTaskCancelled: Cancel or Drop stopped the task.
	ErrTaskCancelled = errors.New("task cancelled")
	// ErrTaskTimeout: the run exceeded ExecutorConfig.TaskTimeout.
	ErrTaskTimeout = errors.New("executor task timeout exceeded")

	errRunPanic = errors.New("compactor panicked")
)

// TaskState is where a task is in its life. Queued and Running tasks are
// active; the other three are final.
type TaskState int

// Task states and, in brackets, the datapb.CompactionTaskState that
// CompactionState reports for them (what a DataNode answers DataCoord).
const (
	TaskQueued    TaskState = iota + 1 // waiting for a worker (pipelining)
	TaskRunning                        // running (executing)
	TaskCompleted                      // done, Result holds the outputs (completed)
	TaskFailed                         // the run or the executor failed it (failed)
	TaskCancelled                      // Cancel stopped it (failed)
)

var stateNames = map[TaskState]string{TaskQueued: "queued", TaskRunning: "running",
	TaskCompleted: "completed", TaskFailed: "failed", TaskCancelled: "cancelled"}

func (s TaskState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("TaskState(%d)", int(s))
}

// Done reports whether s is final.
func (s TaskState) Done() bool { return s >= TaskCompleted }

// CompactionState maps s onto Milvus's CompactionTaskState: queued is
// pipelining, running is executing, completed is completed, and failed
// and cancelled are both failed (DataCoord only tells a timeout apart,
// and it retries those; an executor timeout is a failure).
func (s TaskState) CompactionState() datapb.CompactionTaskState {
	switch s {
	case TaskQueued:
		return datapb.CompactionTaskState_pipelining
	case TaskRunning:
		return datapb.CompactionTaskState_executing
	case TaskCompleted:
		return datapb.CompactionTaskState_completed
	case TaskFailed, TaskCancelled:
		return datapb.CompactionTaskState_failed
	}
	return datapb.CompactionTaskState_unknown
}

// TaskInfo is a snapshot of one task.
type TaskInfo struct {
	ID        string
	PlanID    int64
	Type      datapb.CompactionType
	Channel   string
	SlotUsage int64 // the plan's slot_usage, at least 1
	State     TaskState
	Submitted time.Time
	Started   time.Time // zero until a worker took it
	Finished  time.Time // zero until final
	Progress  Progress  // the run's latest counters
	Plugin    PluginID  // zero until the strategy was chosen
	// Result is set once the task is final, never before: the run's
	// result when completed; for failed and cancelled tasks
	// {PlanID, State: failed, Type, Channel}, so a front end always has a
	// payload to report. Shared: do not modify it.
	Result *datapb.CompactionPlanResult
	Err    error  // why a failed or cancelled task ended
	Cause  string // CauseKind(Err)
}

// TaskReporter is how the function running a task (ExecutorConfig.Run)
// tells the executor about it; its methods may be called from any
// goroutine while the run lasts.
type TaskReporter interface {
	// Progress records the task's running totals.
	Progress(Progress)
	// Plugin records the strategy chosen for the plan.
	Plugin(PluginID)
}

// RunFunc runs one plan in place of Host.Compact. It must honour ctx
// (timeout, Cancel, Drop and Close cancel it) and remove what it wrote
// when it fails, as Compact does.
type RunFunc func(ctx context.Context, plan *datapb.CompactionPlan, rep TaskReporter, opts ...CompactOption) (*datapb.CompactionPlanResult, error)

// ExecutorConfig configures an Executor. Zero values select the defaults.
type ExecutorConfig struct {
	// Workers is how many tasks run at once at most (default
	// DefaultExecutorWorkers); the memory pool may hold some of them
	// waiting for a lease.
	Workers int
	// Queue is how many accepted tasks may wait for a worker (default
	// DefaultExecutorQueue); beyond it Submit fails with ErrQueueFull.
	Queue int
	// History is how many final tasks Get still knows (default
	// DefaultExecutorHistory); the oldest are forgotten first.
	History int
	// TaskTimeout bounds each run (0: no bound beyond the host's own);
	// a run that exceeds it fails with an error matching ErrTaskTimeout.
	TaskTimeout time.Duration
	// CancelGrace is how long Close waits for the runs it cancelled
	// (default DefaultCancelGrace).
	CancelGrace time.Duration
	// SlotMemory is the pool memory one slot stands for (default
	// DefaultSlotMemory); MaxSlots, if positive, caps the capacity.
	SlotMemory int64
	MaxSlots   int64
	// Run runs each plan instead of the Host's Compact (tests, or a front
	// end wrapping Compact); NewExecutor's Host may then be nil.
	Run RunFunc
	// Pool is what slots are computed from when the Host is nil (default:
	// the Host's pool).
	Pool *mempool.Pool
	// Validate checks a plan at Submit (default ValidatePlan); a refusal
	// is returned as is.
	Validate func(*datapb.CompactionPlan) error
	Logger   hclog.Logger // default: none
}

// Executor queues compaction plans by task ID, runs them on a bounded
// set of workers, and remembers their states and results until they are
// dropped or pushed out of the history. It is the task model shared by
// `compact-host serve`, the DataNode worker and embedders. All methods
// are safe for concurrent use.
type Executor struct {
	cfg  ExecutorConfig
	run  RunFunc
	pool *mempool.Pool
	log  hclog.Logger

	mu       sync.Mutex
	wake     *sync.Cond // a task was queued, or closing began
	closing  bool
	seq      uint64
	queue    *list.List             // of *execTask, oldest first
	tasks    map[string]*execTask   // every known task by ID
	active   map[int64]*execTask    // queued and running tasks (dropped ones too) by plan ID
	ranges   OutputRanges           // of the queued and running tasks
	history  []*execTask            // final tasks still known, oldest first
	running  map[*execTask]struct{} // tasks a worker runs
	slotsUse int64                  // slots of the active tasks
	stats    ExecutorStats
	workers  sync.WaitGroup
}

// execTask is one task; info is guarded by Executor.mu.
type execTask struct {
	info    TaskInfo
	digest  [sha256.Size]byte // of the plan, for Submit's idempotency
	plan    *datapb.CompactionPlan
	opts    []CompactOption
	base    context.Context // the submitter's values, never its cancel
	seq     uint64
	elem    *list.Element // in queue while queued
	release func()        // frees the output ranges
	cancel  context.CancelCauseFunc
	stop    error // why the executor cancelled the run, if it did
	dropped bool  // forgotten by Drop; its run is still winding down
	done    chan struct{}
}

// NewExecutor starts cfg.Workers workers running plans on h (or cfg.Run).
func NewExecutor(h *Host, cfg ExecutorConfig) (*Executor, error) {
	if cfg.Workers < 0 || cfg.Queue < 0 || cfg.History < 0 {
		return nil, fmt.Errorf("host: executor: workers %d, queue %d and history %d must not be negative", cfg.Workers, cfg.Queue, cfg.History)
	}
	if cfg.TaskTimeout < 0 || cfg.SlotMemory < 0 || cfg.MaxSlots < 0 {
		return nil, fmt.Errorf("host: executor: task timeout %s, slot memory %d and max slots %d must not be negative", cfg.TaskTimeout, cfg.SlotMemory, cfg.MaxSlots)
	}
	e := &Executor{cfg: cfg, run: cfg.Run, pool: cfg.Pool, log: cfg.Logger,
		queue: list.New(), tasks: map[string]*execTask{}, active: map[int64]*execTask{},
		running: map[*execTask]struct{}{}, stats: newExecutorStats()}
	if e.run == nil {
		if h == nil {
			return nil, errors.New("host: executor: a Host or ExecutorConfig.Run is required")
		}
		e.run = func(ctx context.Context, plan *datapb.CompactionPlan, rep TaskReporter, opts ...CompactOption) (*datapb.CompactionPlanResult, error) {
			return h.Compact(ctx, plan, append(opts, OnStrategy(rep.Plugin), OnProgress(rep.Progress))...)
		}
	}
	if e.pool == nil && h != nil {
		e.pool = h.Pool()
	}
	positive(&e.cfg.Workers, DefaultExecutorWorkers)
	positive(&e.cfg.Queue, DefaultExecutorQueue)
	positive(&e.cfg.History, DefaultExecutorHistory)
	positive(&e.cfg.CancelGrace, DefaultCancelGrace)
	positive(&e.cfg.SlotMemory, DefaultSlotMemory)
	if e.cfg.Validate == nil {
		e.cfg.Validate = ValidatePlan
	}
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	e.wake = sync.NewCond(&e.mu)
	e.stats.Workers, e.stats.QueueCapacity = e.cfg.Workers, e.cfg.Queue
	for range e.cfg.Workers {
		e.workers.Add(1)
		go e.work()
	}
	return e, nil
}

func positive[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Submit queues plan as task id and returns at once; the run does not
// inherit ctx's cancellation or deadline, only its values. Submitting a
// known id again with an equal plan is a no-op returning nil, whatever the
// task's state (no second run); with a different plan it fails with
// ErrTaskConflict. Otherwise the plan must pass ExecutorConfig.Validate,
// its plan ID must not be queued or running as another task
// (ErrDuplicatePlan), its output ID ranges must not overlap those of a
// queued or running task (ErrOutputRangesInUse), and the queue must have
// room (ErrQueueFull). opts apply to the task's Compact call.
func (e *Executor) Submit(ctx context.Context, id string, plan *datapb.CompactionPlan, opts ...CompactOption) error {
	if id == "" {
		return fmt.Errorf("host: executor: plan %d: empty task ID", plan.GetPlanID())
	}
	digest, err := planDigest(plan)
	if err != nil {
		return err
	}
	now := time.Now()
	t := &execTask{
		info: TaskInfo{ID: id, PlanID: plan.GetPlanID(), Type: plan.GetType(), Channel: plan.GetChannel(),
			SlotUsage: max(plan.GetSlotUsage(), 1), State: TaskQueued, Submitted: now},
		digest: digest, plan: plan, opts: opts, base: context.WithoutCancel(ctx), done: make(chan struct{}),
	}
	// Validation may walk thousands of binlogs: not under the lock.
	verr := e.cfg.Validate(plan)
	e.mu.Lock()
	defer e.mu.Unlock()
	if known, ok := e.tasks[id]; ok {
		if known.digest == digest {
			return nil
		}
		e.stats.Rejected["task_conflict"]++
		return fmt.Errorf("%w: task %s is plan %d (%s); plan %d cannot reuse its ID", ErrTaskConflict, id, known.info.PlanID, known.info.State, plan.GetPlanID())
	}
	if e.closing {
		e.stats.Rejected["shutting_down"]++
		return ErrExecutorClosed
	}
	if verr != nil {
		e.stats.Rejected["invalid_plan"]++
		return verr
	}
	if other, dup := e.active[t.info.PlanID]; dup {
		e.stats.Rejected["duplicate"]++
		state := other.info.State.String()
		if other.dropped {
			state = "being dropped"
		}
		return fmt.Errorf("%w: plan %d is already %s as task %s", ErrDuplicatePlan, t.info.PlanID, state, other.info.ID)
	}
	release, err := e.ranges.Reserve(plan)
	if err != nil {
		e.stats.Rejected["ranges_in_use"]++
		return err
	}
	if e.queue.Len() >= e.cfg.Queue {
		release()
		e.stats.Rejected["queue_full"]++
		return fmt.Errorf("%w: %d plans waiting and %d running", ErrQueueFull, e.queue.Len(), len(e.running))
	}
	e.seq++
	t.seq, t.release = e.seq, release
	t.elem = e.queue.PushBack(t)
	e.tasks[id] = t
	e.active[t.info.PlanID] = t
	e.slotsUse += t.info.SlotUsage
	e.stats.Queued++
	e.stats.Submitted[t.info.Type.String()]++
	e.log.Info("plan queued", "task", id, "plan", t.info.PlanID, "type", t.info.Type.String(), "queue", e.queue.Len())
	e.wake.Signal()
	return nil
}

// planDigest identifies a plan's content for Submit's idempotency.
func planDigest(plan *datapb.CompactionPlan) ([sha256.Size]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(plan)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("host: executor: plan %d: encoding: %w", plan.GetPlanID(), err)
	}
	return sha256.Sum256(b), nil
}

// Get returns a snapshot of task id, or false if it is unknown: never
// submitted, dropped, or pushed out of the history.
func (e *Executor) Get(id string) (TaskInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tasks[id]
	if !ok {
		return TaskInfo{}, false
	}
	return t.info, true
}

// Tasks returns up to limit known tasks (all if limit <= 0) in one of
// states (any if none), most recently submitted first.
func (e *Executor) Tasks(limit int, states ...TaskState) []TaskInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := make([]*execTask, 0, len(e.tasks))
	for _, t := range e.tasks {
		if len(states) == 0 || inStates(t.info.State, states) {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq > ts[j].seq })
	if limit > 0 && len(ts) > limit {
		ts = ts[:limit]
	}
	out := make([]TaskInfo, len(ts))
	for i, t := range ts {
		out[i] = t.info
	}
	return out
}

func inStates(s TaskState, states []TaskState) bool {
	for _, x := range states {
		if s == x {
			return true
		}
	}
	return false
}

// Wait blocks until task id is final and returns it, or returns ctx's
// error. An unknown (or dropped) task is an error.
func (e *Executor) Wait(ctx context.Context, id string) (TaskInfo, error) {
	e.mu.Lock()
	t, ok := e.tasks[id]
	e.mu.Unlock()
	if !ok {
		return TaskInfo{}, fmt.Errorf("host: executor: no task %q", id)
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return TaskInfo{}, fmt.Errorf("host: executor: waiting for task %s: %w", id, ctx.Err())
	}
	if info, ok := e.Get(id); ok {
		return info, nil
	}
	return TaskInfo{}, fmt.Errorf("host: executor: task %s was dropped", id)
}

// Cancel stops task id if it is queued or running; it ends Cancelled (a
// queued task at once, a running one when its run has returned, after
// deleting what it wrote) with an error matching ErrTaskCancelled, and
// stays known. It reports whether the task was active; cancelling a final
// or unknown task does nothing.
func (e *Executor) Cancel(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tasks[id]
	if !ok || t.info.State.Done() {
		return false
	}
	e.stopLocked(t, fmt.Errorf("%w: task %s", ErrTaskCancelled, id))
	return true
}

// stopLocked ends a queued task with cause, or cancels a running one's run
// with it. Called with e.mu held.
func (e *Executor) stopLocked(t *execTask, cause error) {
	if t.info.State == TaskQueued {
		e.queue.Remove(t.elem)
		t.stop = cause
		e.finishLocked(t, nil, cause)
		return
	}
	if t.stop == nil {
		t.stop = cause
		t.cancel(cause)
	}
}

// Drop cancels task id if it is queued or running, forgets it, and waits
// until its run has returned (so whatever the run wrote is deleted) or
// ctx ends. Dropping an unknown task returns nil. Until the run has
// returned, the plan ID and output ranges stay held: a new Submit of the
// same plan fails with ErrDuplicatePlan meanwhile.
func (e *Executor) Drop(ctx context.Context, id string) error {
	e.mu.Lock()
	t, ok := e.tasks[id]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	delete(e.tasks, id)
	t.dropped = true
	if !t.info.State.Done() {
		e.stopLocked(t, fmt.Errorf("%w: task %s dropped", ErrTaskCancelled, id))
	} else if i := slices.Index(e.history, t); i >= 0 {
		e.history = slices.Delete(e.history, i, i+1)
	}
	e.mu.Unlock()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("host: executor: dropped task %s is still winding down: %w", id, ctx.Err())
	}
}

// Slots is what an executor can take, in slots: Milvus's unit of worker
// capacity, each task costing its plan's slot_usage (at least 1).
type Slots struct {
	// Capacity is the pool's size over SlotMemory, capped by MaxSlots
	// (without a pool: MaxSlots).
	Capacity int64
	// InUse is the slot usage of the queued and running tasks.
	InUse int64
	// Free is Capacity - InUse, at most the pool's free memory over
	// SlotMemory, and 0 while the queue is full or the executor closes.
	Free int64
}

// Slots reports the executor's slots now. A DataNode front end answers
// QuerySlot with Free (after its own shaping).
func (e *Executor) Slots() Slots {
	var s Slots
	avail := int64(-1) // no memory bound
	if e.pool != nil {
		st := e.pool.Stats()
		s.Capacity, avail = st.Total/e.cfg.SlotMemory, st.Available/e.cfg.SlotMemory
		if e.cfg.MaxSlots > 0 {
			s.Capacity = min(s.Capacity, e.cfg.MaxSlots)
		}
	} else {
		s.Capacity = e.cfg.MaxSlots
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s.InUse = e.slotsUse
	if e.closing || e.queue.Len() >= e.cfg.Queue {
		return s
	}
	s.Free = max(s.Capacity-s.InUse, 0)
	if avail >= 0 {
		s.Free = min(s.Free, avail)
	}
	return s
}

// FreeSlots is Slots().Free.
func (e *Executor) FreeSlots() int64 { return e.Slots().Free }

// Closing reports whether Close has begun.
func (e *Executor) Closing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// ExecutorStats are an executor's counters since it started.
type ExecutorStats struct {
	Queued, Running        int // tasks now
	QueueCapacity, Workers int
	Submitted              map[string]int64    // accepted plans by CompactionType name
	Rejected               map[string]int64    // Submit refusals: queue_full, duplicate, task_conflict, ranges_in_use, invalid_plan, shutting_down
	Finished               map[TaskState]int64 // final tasks by state (completed, failed, cancelled; all start at 0)
	Failures               map[string]int64    // failed and cancelled tasks by CauseKind
	PluginFailures         map[string]int64    // those whose error IsPluginFailure, by CauseKind (PluginFailureCauses start at 0)
	Progress               Progress            // totals over every run (PlanID and Stage unset)
}

func newExecutorStats() ExecutorStats {
	s := ExecutorStats{Submitted: map[string]int64{}, Rejected: map[string]int64{},
		Finished: map[TaskState]int64{TaskCompleted: 0, TaskFailed: 0, TaskCancelled: 0},
		Failures: map[string]int64{}, PluginFailures: map[string]int64{}}
	for _, k := range PluginFailureCauses() {
		s.PluginFailures[k] = 0
	}
	return s
}

// Stats returns a copy of the executor's counters.
func (e *Executor) Stats() ExecutorStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Submitted, s.Rejected, s.Failures, s.PluginFailures = cloneMap(s.Submitted), cloneMap(s.Rejected), cloneMap(s.Failures), cloneMap(s.PluginFailures)
	s.Finished = cloneMap(s.Finished)
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
