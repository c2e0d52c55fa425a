package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/compacthost/compacthost/host"
)

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/plans", s.handleSubmit)
	m.HandleFunc("GET /v1/tasks/{id}", s.handleTask)
	m.HandleFunc("GET /v1/tasks", s.handleTasks)
	m.HandleFunc("GET /v1/plugins", s.handlePlugins)
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /metrics", s.handleMetrics)
	s.mux = m
	s.handler = s.accessLog(s.requireToken(s.bodyDeadline(m)))
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs every request at debug level.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.IsDebug() {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.code,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	// Queue full only:
	QueueLength   *int `json:"queue_length,omitempty"`
	QueueCapacity *int `json:"queue_capacity,omitempty"`
	RetryAfter    *int `json:"retry_after_seconds,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

// SubmitResponse is the body of a 202 from POST /v1/plans.
type SubmitResponse struct {
	TaskID string `json:"task_id"`
	PlanID int64  `json:"plan_id"`
	State  State  `json:"state"`
	Href   string `json:"href"` // the task's status URL path
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		s.countRejected("shutting_down")
		writeError(w, http.StatusServiceUnavailable, "server is shutting down; submit the plan to another worker")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxPlanBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.countRejected("too_large")
			writeError(w, http.StatusRequestEntityTooLarge, "plan is larger than %d bytes", mbe.Limit)
			return
		}
		writeError(w, http.StatusBadRequest, "reading the plan: %v", err)
		return
	}
	plan, err := s.cfg.DecodePlan(body, r.Header.Get("Content-Type"))
	if err != nil {
		s.countRejected("bad_plan")
		writeError(w, http.StatusBadRequest, "bad plan: %v", err)
		return
	}
	id, err := s.submit(plan)
	switch {
	case errors.Is(err, host.ErrQueueFull):
		secs := max(1, int((s.cfg.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		qlen, qcap := s.exec.Stats().Queued, s.cfg.Queue
		writeJSON(w, http.StatusTooManyRequests, errorBody{
			Error:       fmt.Sprintf("plan %d refused: %v; retry after %s", plan.GetPlanID(), err, s.cfg.RetryAfter),
			QueueLength: &qlen, QueueCapacity: &qcap, RetryAfter: &secs,
		})
	case errors.Is(err, host.ErrDuplicatePlan):
		writeError(w, http.StatusConflict, "%v", err)
	case errors.Is(err, host.ErrOutputRangesInUse):
		writeError(w, http.StatusConflict, "%v; both would write the same output objects: resubmit when that plan's task has finished", err)
	case errors.Is(err, host.ErrExecutorClosed):
		writeError(w, http.StatusServiceUnavailable, "server is shutting down; submit the plan to another worker")
	case err != nil:
		writeError(w, http.StatusInternalServerError, "queueing plan %d: %v", plan.GetPlanID(), err)
	default:
		href := "/v1/tasks/" + id
		w.Header().Set("Location", href)
		writeJSON(w, http.StatusAccepted, SubmitResponse{TaskID: id, PlanID: plan.GetPlanID(), State: StateQueued, Href: href})
	}
}

func (s *Server) countRejected(reason string) {
	s.mu.Lock()
	s.rejected[reason]++
	s.mu.Unlock()
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, ok, err := s.lookup(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no task %q (unknown, or finished and dropped from the last %d)", id, s.cfg.History)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// TaskList is the body of GET /v1/tasks.
type TaskList struct {
	Tasks []TaskView `json:"tasks"`
}

func (s *Server) handleTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := State(q.Get("state"))
	switch state {
	case "", StateQueued, StateRunning, StateSucceeded, StateFailed:
	default:
		writeError(w, http.StatusBadRequest, "state %q: want queued, running, succeeded or failed", state)
		return
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit %q: want a non-negative integer (0: all)", l)
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, TaskList{Tasks: s.list(state, limit)})
}

// PluginView is one entry of GET /v1/plugins.
type PluginView struct {
	File    string `json:"file"`
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
	Active  bool   `json:"active"`
	State   string `json:"state"` // active, standby, loading or refused (host.PluginStatus.State)
	Error   string `json:"error,omitempty"`
}

// PluginList is the body of GET /v1/plugins.
type PluginList struct {
	Plugins []PluginView `json:"plugins"`
}

func (s *Server) plugins() []PluginView {
	if s.cfg.Plugins == nil {
		return []PluginView{}
	}
	st := s.cfg.Plugins.Plugins()
	out := make([]PluginView, len(st))
	for i, p := range st {
		out[i] = PluginView{File: p.File, Name: p.ID.Name, Version: p.ID.Version, SHA256: p.ID.SHA256, Active: p.Active, State: p.State()}
		if p.Err != nil {
			out[i].Error = p.Err.Error()
		}
	}
	return out
}

func (s *Server) handlePlugins(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, PluginList{Plugins: s.plugins()})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if s.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
