// Package server is the HTTP front of `compact-host serve`: a bounded queue of
// compaction plans run by a pool of workers, task status, plugin status,
// health and Prometheus metrics.
//
// API (JSON unless noted):
//
//	POST /v1/plans        a plan (protojson, or binary protobuf with Content-Type
//	                      application/x-protobuf) -> 202 {"task_id": ...};
//	                      400 bad plan, 409 plan ID already queued or running
//	                      or output ID ranges overlapping a queued or running plan's,
//	                      413 too large, 429 queue full, 503 shutting down
//	GET  /v1/tasks/{id}   one task: state, timestamps, result or error; 404 unknown id
//	GET  /v1/tasks        recent tasks, newest first (?state=..., ?limit=N)
//	GET  /v1/plugins      the plugin registry's binaries and their status
//	GET  /healthz         200 while serving, 503 while shutting down
//	GET  /metrics         Prometheus text exposition format
//
// With Config.Token set, every request needs "Authorization: Bearer <token>"
// or gets 401 with WWW-Authenticate: Bearer (Config.OpenHealthMetrics
// exempts /healthz and /metrics). A request body must arrive within
// Config.BodyTimeout.
//
// Metrics (counters end in _total; labels in braces):
//
//	compact_host_tasks{state=queued|running}                 gauge
//	compact_host_tasks_finished_total{state=succeeded|failed}
//	compact_host_task_failures_total{cause}                  every failure, by CauseKind
//	compact_host_plugin_failures_total{cause}                failures that IsPluginFailure
//	compact_host_plans_total{type}                           accepted, by CompactionType name
//	compact_host_plans_rejected_total{reason}                queue_full, bad_plan, duplicate, ranges_in_use, too_large, shutting_down
//	compact_host_queue_length, compact_host_queue_capacity, compact_host_workers
//	compact_host_deletes_read_total, compact_host_rows_read_total, compact_host_read_bytes_total,
//	compact_host_rows_written_total, compact_host_written_bytes_total
//	compact_host_pool_total_bytes, compact_host_pool_used_bytes, compact_host_pool_leases, compact_host_pool_waiters
//	compact_host_plugins{status=active|standby|loading|refused}
//	compact_host_plugin_rollbacks_total                      when the PluginLister has Rollbacks() int64
//	compact_host_shutting_down, compact_host_uptime_seconds
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/mempool"
)

// Progress is the work one task has done so far. Each report carries the
// task's running totals (not increments).
type Progress struct {
	DeletesRead  int64 `json:"deletes_read"`
	RowsRead     int64 `json:"rows_read"`
	BytesRead    int64 `json:"bytes_read"`
	RowsWritten  int64 `json:"rows_written"`
	BytesWritten int64 `json:"bytes_written"`
}

// Compactor runs one compaction plan. It must honour ctx (the task timeout
// and a shutdown that ran out of patience cancel it) and may call rep's
// methods from any goroutine while it runs.
type Compactor interface {
	Compact(ctx context.Context, plan *datapb.CompactionPlan, rep Reporter) (*datapb.CompactionPlanResult, error)
}

// Reporter is how a Compactor tells the server about the task it runs.
type Reporter interface {
	// Progress records the task's running totals.
	Progress(Progress)
	// Plugin records the strategy plugin that runs the plan; the task
	// record names it.
	Plugin(host.PluginID)
}

// PluginLister reports plugin status; *host.Registry implements it (and
// Rollbacks, which /metrics reports when present).
type PluginLister interface {
	Plugins() []host.PluginStatus
}

// Defaults for Config's zero values.
const (
	DefaultWorkers         = 2
	DefaultQueue           = 16
	DefaultHistory         = 1000
	DefaultMaxPlanBytes    = 64 << 20
	DefaultRetryAfter      = 5 * time.Second
	DefaultShutdownTimeout = time.Minute
	DefaultCancelGrace     = 10 * time.Second
	// DefaultReadHeaderTimeout, DefaultBodyTimeout and DefaultIdleTimeout
	// bound how long a client may hold a connection without progress.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// Config configures a Server. Compactor is required.
type Config struct {
	Compactor Compactor
	// DecodePlan turns a request body into a plan; a decode error is the
	// 400 response's message. Default: DecodePlan.
	DecodePlan func(body []byte, contentType string) (*datapb.CompactionPlan, error)
	Plugins    PluginLister  // optional: GET /v1/plugins and plugin metrics
	Pool       *mempool.Pool // optional: pool metrics
	// Workers is how many plans run at once at most (default DefaultWorkers);
	// the memory pool may hold some of them waiting for a lease.
	Workers int
	// Queue is how many accepted plans may wait for a worker (default
	// DefaultQueue); beyond it POST /v1/plans answers 429.
	Queue int
	// History is how many finished tasks GET /v1/tasks remembers (default
	// DefaultHistory); the oldest finished tasks are forgotten first.
	History int
	// TaskTimeout bounds each task's run (0: no bound beyond the compactor's).
	TaskTimeout time.Duration
	// MaxPlanBytes caps a request body (default DefaultMaxPlanBytes).
	MaxPlanBytes int64
	// RetryAfter is the Retry-After hint of a 429 (default DefaultRetryAfter).
	RetryAfter time.Duration
	// ShutdownTimeout is how long Serve lets running tasks finish after its
	// context ends before cancelling them (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// CancelGrace is how long Shutdown waits for cancelled tasks to return
	// (default DefaultCancelGrace).
	CancelGrace time.Duration
	Logger      hclog.Logger // default: a null logger

	// Token, if set, is the bearer token every request must present
	// (Authorization: Bearer <token>); without it the answer is 401 with
	// WWW-Authenticate: Bearer. Empty serves without authentication.
	Token string
	// OpenHealthMetrics serves GET /healthz and GET /metrics without the
	// token (for probes and scrapers that cannot send one).
	OpenHealthMetrics bool
	// TLS, if set, makes Serve speak HTTPS on its listener.
	TLS *tls.Config
	// ReadHeaderTimeout bounds reading a request's headers (default
	// DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body from when its handler
	// starts (default DefaultBodyTimeout). Serve also sets the connection's
	// ReadTimeout to ReadHeaderTimeout + BodyTimeout.
	BodyTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
}

// Server queues plans, runs them on workers and serves the HTTP API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	started time.Time
	queue   chan *task
	mux     *http.ServeMux
	handler http.Handler // mux behind the access log

	runCtx    context.Context // parent of every task's context
	cancelRun context.CancelFunc
	workers   sync.WaitGroup

	mu       sync.Mutex
	draining bool
	seq      uint64
	tasks    map[string]*task
	active   map[int64]*task   // queued or running tasks by plan ID
	ranges   host.OutputRanges // output ID ranges of the queued and running tasks
	finished []*task           // finished tasks, oldest first, for the history bound
	stats    counters
}

// New validates cfg, starts the workers and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.Compactor == nil {
		return nil, errors.New("server: a Compactor is required")
	}
	if cfg.Workers < 0 || cfg.Queue < 0 || cfg.History < 0 {
		return nil, fmt.Errorf("server: workers %d, queue %d and history %d must not be negative", cfg.Workers, cfg.Queue, cfg.History)
	}
	setDefault(&cfg.Workers, DefaultWorkers)
	setDefault(&cfg.Queue, DefaultQueue)
	setDefault(&cfg.History, DefaultHistory)
	setDefault(&cfg.MaxPlanBytes, DefaultMaxPlanBytes)
	setDefault(&cfg.RetryAfter, DefaultRetryAfter)
	setDefault(&cfg.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&cfg.CancelGrace, DefaultCancelGrace)
	setDefault(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&cfg.BodyTimeout, DefaultBodyTimeout)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.DecodePlan == nil {
		cfg.DecodePlan = DecodePlan
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		queue:   make(chan *task, cfg.Queue),
		tasks:   map[string]*task{},
		active:  map[int64]*task{},
		stats:   newCounters(),
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.routes()
	for range cfg.Workers {
		s.workers.Add(1)
		go s.work()
	}
	return s, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on ln until ctx ends, then shuts down gracefully:
// new plans and /healthz get 503 while running tasks finish (status reads
// keep working), running tasks are cancelled after ShutdownTimeout, and the
// listener closes last. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadHeaderTimeout + s.cfg.BodyTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-errc:
		serveErr = fmt.Errorf("server: serving on %s: %w", ln.Addr(), serveErr)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.Shutdown(sctx)
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if herr := hs.Shutdown(hctx); herr != nil && err == nil && serveErr == nil {
		err = fmt.Errorf("server: closing HTTP connections: %w", herr)
	}
	if serveErr != nil {
		return serveErr
	}
	return err
}

// Shutdown stops accepting plans, fails the ones still queued, and waits
// for running tasks until ctx ends; then it cancels them and waits up to
// CancelGrace more. It returns an error only if tasks are still running
// after that. Calling it again waits again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		close(s.queue)
	}
	running := s.stats.running
	s.mu.Unlock()
	s.log.Info("shutting down: no new plans accepted", "running", running)
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
		s.cancelRun()
		s.log.Info("shutdown complete: every task finished")
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	running = s.stats.running
	s.mu.Unlock()
	s.log.Warn("shutdown timeout: cancelling running tasks", "running", running)
	s.cancelRun()
	select {
	case <-done:
		s.log.Info("shutdown complete after cancelling running tasks")
		return nil
	case <-time.After(s.cfg.CancelGrace):
		s.mu.Lock()
		running = s.stats.running
		s.mu.Unlock()
		return fmt.Errorf("server: %d task(s) still running %s after being cancelled", running, s.cfg.CancelGrace)
	}
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

func (s *Server) work() {
	defer s.workers.Done()
	for t := range s.queue {
		s.run(t)
	}
}

// run executes one task, unless shutdown began while it was queued.
func (s *Server) run(t *task) {
	s.mu.Lock()
	if s.draining {
		s.finishLocked(t, nil, errShutdownQueued)
		s.mu.Unlock()
		s.log.Warn("task failed", "task", t.id, "plan", t.planID, "cause", t.cause, "error", t.err)
		return
	}
	t.state, t.started = StateRunning, time.Now()
	s.stats.queued--
	s.stats.running++
	s.mu.Unlock()
	s.log.Info("task started", "task", t.id, "plan", t.planID, "type", t.typ)

	ctx, cancel := s.runCtx, context.CancelFunc(func() {})
	if s.cfg.TaskTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.TaskTimeout)
	}
	res, err := s.compact(ctx, t)
	if err != nil && s.runCtx.Err() != nil {
		err = fmt.Errorf("%w: %w", errShutdownCancelled, err)
	}
	cancel()

	s.mu.Lock()
	s.finishLocked(t, res, err)
	d := t.finished.Sub(t.started)
	s.mu.Unlock()
	if err != nil {
		s.log.Error("task failed", "task", t.id, "plan", t.planID, "cause", t.cause, "duration", d, "error", err)
	} else {
		s.log.Info("task succeeded", "task", t.id, "plan", t.planID, "segments", len(res.GetSegments()), "duration", d)
	}
}

// compact calls the compactor, turning a panic into a task failure.
func (s *Server) compact(ctx context.Context, t *task) (res *datapb.CompactionPlanResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w: plan %d: %v", errCompactorPanic, t.planID, p)
		}
	}()
	res, err = s.cfg.Compactor.Compact(ctx, t.plan, taskReporter{s, t})
	if err == nil && res == nil {
		err = fmt.Errorf("plan %d: compactor returned no result and no error", t.planID)
	}
	return res, err
}

// taskReporter is the Reporter of one task.
type taskReporter struct {
	s *Server
	t *task
}

func (r taskReporter) Progress(p Progress) { r.s.progress(r.t, p) }

func (r taskReporter) Plugin(id host.PluginID) {
	r.s.mu.Lock()
	r.t.plugin = &PluginRef{Name: id.Name, Version: id.Version, SHA256: id.SHA256}
	r.s.mu.Unlock()
}

// progress adds what a task did since its last report to the totals.
func (s *Server) progress(t *task, p Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.state != StateRunning {
		return // a report racing with the end of the task
	}
	add := func(total *int64, now, last int64) {
		if now > last {
			*total += now - last
		}
	}
	add(&s.stats.progress.DeletesRead, p.DeletesRead, t.progress.DeletesRead)
	add(&s.stats.progress.RowsRead, p.RowsRead, t.progress.RowsRead)
	add(&s.stats.progress.BytesRead, p.BytesRead, t.progress.BytesRead)
	add(&s.stats.progress.RowsWritten, p.RowsWritten, t.progress.RowsWritten)
	add(&s.stats.progress.BytesWritten, p.BytesWritten, t.progress.BytesWritten)
	t.progress = p
}
