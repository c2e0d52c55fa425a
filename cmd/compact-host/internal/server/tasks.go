package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
)

// State is a task's lifecycle state.
type State string

// Task states.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

var (
	errShutdownQueued    = errors.New("server shut down before the task started")
	errShutdownCancelled = errors.New("cancelled by server shutdown")
	errCompactorPanic    = errors.New("compactor panicked")
)

type task struct {
	id      string
	seq     uint64
	plan    *datapb.CompactionPlan // dropped when the task finishes
	release func()                 // frees the plan's output ID ranges when the task finishes
	planID  int64
	typ     string
	channel string

	state                        State
	submitted, started, finished time.Time
	progress                     Progress
	result                       json.RawMessage
	segments                     int
	err, cause                   string
	plugin                       *PluginRef
}

// PluginRef names the strategy binary that ran a task.
type PluginRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
}

// TaskView is the JSON form of a task.
type TaskView struct {
	ID          string          `json:"task_id"`
	PlanID      int64           `json:"plan_id"`
	Type        string          `json:"type"`
	Channel     string          `json:"channel,omitempty"`
	State       State           `json:"state"`
	SubmittedAt time.Time       `json:"submitted_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Seconds     float64         `json:"duration_seconds,omitempty"` // running time so far or in total
	Progress    Progress        `json:"progress"`
	Segments    int             `json:"result_segments,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"` // datapb.CompactionPlanResult as protojson
	Error       string          `json:"error,omitempty"`
	Cause       string          `json:"cause,omitempty"`  // see CauseKind
	Plugin      *PluginRef      `json:"plugin,omitempty"` // once the strategy was chosen
}

// view copies a task for JSON; withResult includes the result document.
// Called with s.mu held.
func (t *task) view(now time.Time, withResult bool) TaskView {
	v := TaskView{
		ID: t.id, PlanID: t.planID, Type: t.typ, Channel: t.channel, State: t.state,
		SubmittedAt: t.submitted, Progress: t.progress, Segments: t.segments, Error: t.err, Cause: t.cause,
		Plugin: t.plugin,
	}
	if !t.started.IsZero() {
		st := t.started
		v.StartedAt = &st
		end := now
		if !t.finished.IsZero() {
			end = t.finished
		}
		v.Seconds = end.Sub(t.started).Seconds()
	}
	if !t.finished.IsZero() {
		f := t.finished
		v.FinishedAt = &f
	}
	if withResult {
		v.Result = t.result
	}
	return v
}

func newTaskID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// errQueueFull and errDraining are submit's refusals.
var (
	errQueueFull = errors.New("queue full")
	errDraining  = errors.New("server is shutting down")
	errDuplicate = errors.New("duplicate plan")
)

// submit queues a decoded plan. Called without s.mu.
func (s *Server) submit(plan *datapb.CompactionPlan) (TaskView, error) {
	now := time.Now()
	t := &task{
		id: newTaskID(), plan: plan, planID: plan.GetPlanID(), typ: plan.GetType().String(),
		channel: plan.GetChannel(), state: StateQueued, submitted: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		s.stats.rejected["shutting_down"]++
		return TaskView{}, errDraining
	}
	if other, dup := s.active[t.planID]; dup {
		s.stats.rejected["duplicate"]++
		return TaskView{}, fmt.Errorf("%w: plan %d is already %s as task %s", errDuplicate, t.planID, other.state, other.id)
	}
	release, err := s.ranges.Reserve(plan)
	if err != nil {
		s.stats.rejected["ranges_in_use"]++
		return TaskView{}, err
	}
	t.release = release
	select {
	case s.queue <- t:
	default:
		release()
		s.stats.rejected["queue_full"]++
		return TaskView{}, fmt.Errorf("%w: %d plans waiting and %d running; retry after %s",
			errQueueFull, len(s.queue), s.stats.running, s.cfg.RetryAfter)
	}
	s.seq++
	t.seq = s.seq
	s.tasks[t.id] = t
	s.active[t.planID] = t
	s.stats.queued++
	s.stats.plansByType[t.typ]++
	s.log.Info("plan queued", "task", t.id, "plan", t.planID, "type", t.typ, "queue", len(s.queue))
	return t.view(now, false), nil
}

// finishLocked records a task's outcome and applies the history bound.
func (s *Server) finishLocked(t *task, res *datapb.CompactionPlanResult, err error) {
	if t.state == StateRunning {
		s.stats.running--
	} else {
		s.stats.queued--
	}
	t.finished, t.plan = time.Now(), nil
	t.release()
	if s.active[t.planID] == t {
		delete(s.active, t.planID)
	}
	if err == nil {
		if b, merr := protojson.Marshal(res); merr != nil {
			err = fmt.Errorf("plan %d: encoding the result: %w", t.planID, merr)
		} else {
			t.result, t.segments = b, len(res.GetSegments())
		}
	}
	if err != nil {
		t.state, t.err, t.cause = StateFailed, err.Error(), CauseKind(err)
		s.stats.failures[t.cause]++
		if IsPluginFailure(err) {
			s.stats.pluginFailures[t.cause]++
		}
	} else {
		t.state = StateSucceeded
	}
	s.stats.finished[t.state]++
	s.finished = append(s.finished, t)
	if over := len(s.finished) - s.cfg.History; over > 0 {
		for _, old := range s.finished[:over] {
			delete(s.tasks, old.id)
		}
		s.finished = append(s.finished[:0], s.finished[over:]...)
	}
}

// lookup returns one task with its result.
func (s *Server) lookup(id string) (TaskView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return TaskView{}, false
	}
	return t.view(time.Now(), true), true
}

// list returns up to limit tasks (all if limit <= 0) in the given state
// (any if empty), newest first, without results.
func (s *Server) list(state State, limit int) []TaskView {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	ts := make([]*task, 0, len(s.tasks))
	for _, t := range s.tasks {
		if state == "" || t.state == state {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq > ts[j].seq })
	if limit > 0 && len(ts) > limit {
		ts = ts[:limit]
	}
	out := make([]TaskView, len(ts))
	for i, t := range ts {
		out[i] = t.view(now, false)
	}
	return out
}
