package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/compacthost/compacthost/host"
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
	Cause       string          `json:"cause,omitempty"`  // see host.CauseKind
	Plugin      *PluginRef      `json:"plugin,omitempty"` // once the strategy was chosen
}

// viewOf converts an executor task for JSON; withResult includes the
// result document of a succeeded task.
func viewOf(ti host.TaskInfo, now time.Time, withResult bool) (TaskView, error) {
	v := TaskView{
		ID: ti.ID, PlanID: ti.PlanID, Type: ti.Type.String(), Channel: ti.Channel, State: stateOf(ti.State),
		SubmittedAt: ti.Submitted, Cause: ti.Cause,
		Progress: progressOf(ti.Progress),
	}
	if ti.Err != nil {
		v.Error = ti.Err.Error()
	}
	if id := ti.Plugin; id.Name != "" {
		v.Plugin = &PluginRef{Name: id.Name, Version: id.Version, SHA256: id.SHA256}
	}
	if !ti.Started.IsZero() {
		st := ti.Started
		v.StartedAt = &st
		end := now
		if !ti.Finished.IsZero() {
			end = ti.Finished
		}
		v.Seconds = end.Sub(ti.Started).Seconds()
	}
	if !ti.Finished.IsZero() {
		f := ti.Finished
		v.FinishedAt = &f
	}
	if ti.State == host.TaskCompleted {
		v.Segments = len(ti.Result.GetSegments())
		if withResult {
			b, err := protojson.Marshal(ti.Result)
			if err != nil {
				return v, fmt.Errorf("task %s: plan %d: encoding the result: %w", ti.ID, ti.PlanID, err)
			}
			v.Result = b
		}
	}
	return v, nil
}

// stateOf names an executor state as the API does: serve never cancels a
// task by itself, and a cancelled one counts as failed.
func stateOf(s host.TaskState) State {
	switch s {
	case host.TaskQueued:
		return StateQueued
	case host.TaskRunning:
		return StateRunning
	case host.TaskCompleted:
		return StateSucceeded
	}
	return StateFailed
}

// executorStates are the executor states behind an API state.
func executorStates(s State) []host.TaskState {
	switch s {
	case StateQueued:
		return []host.TaskState{host.TaskQueued}
	case StateRunning:
		return []host.TaskState{host.TaskRunning}
	case StateSucceeded:
		return []host.TaskState{host.TaskCompleted}
	case StateFailed:
		return []host.TaskState{host.TaskFailed, host.TaskCancelled}
	}
	return nil
}

func newTaskID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// submit queues a decoded plan under a new task ID.
func (s *Server) submit(plan *datapb.CompactionPlan) (string, error) {
	id := newTaskID()
	return id, s.exec.Submit(context.Background(), id, plan)
}

// lookup returns one task with its result.
func (s *Server) lookup(id string) (TaskView, bool, error) {
	ti, ok := s.exec.Get(id)
	if !ok {
		return TaskView{}, false, nil
	}
	v, err := viewOf(ti, time.Now(), true)
	return v, true, err
}

// list returns up to limit tasks (all if limit <= 0) in the given state
// (any if empty), newest first, without results.
func (s *Server) list(state State, limit int) []TaskView {
	now := time.Now()
	infos := s.exec.Tasks(limit, executorStates(state)...)
	out := make([]TaskView, len(infos))
	for i, ti := range infos {
		out[i], _ = viewOf(ti, now, false) // no result, no encoding error
	}
	return out
}
