// Package server is the HTTP front of `compact-host serve`: plan submission
// to a host.Executor (its bounded queue, workers, task states and history),
// task status, plugin status, health and Prometheus metrics.
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

// progressOf is the API form of the host's counters.
func progressOf(p host.Progress) Progress {
	return Progress{DeletesRead: p.DeletesRead, RowsRead: p.RowsRead, BytesRead: p.BytesRead,
		RowsWritten: p.RowsWritten, BytesWritten: p.BytesWritten}
}

// Compactor runs one compaction plan. It must honour ctx (the task timeout
// and a shutdown that ran out of patience cancel it) and may call rep's
// methods from any goroutine while it runs. Config.Host stands for
// Host.Compact.
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
	DefaultWorkers         = host.DefaultExecutorWorkers
	DefaultQueue           = host.DefaultExecutorQueue
	DefaultHistory         = host.DefaultExecutorHistory
	DefaultMaxPlanBytes    = 64 << 20
	DefaultRetryAfter      = 5 * time.Second
	DefaultShutdownTimeout = time.Minute
	DefaultCancelGrace     = host.DefaultCancelGrace
	// DefaultReadHeaderTimeout, DefaultBodyTimeout and DefaultIdleTimeout
	// bound how long a client may hold a connection without progress.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// Config configures a Server. Compactor or Host is required.
type Config struct {
	Compactor Compactor
	// Host runs the plans (Host.Compact) when Compactor is nil; its pool
	// is the default Pool.
	Host *host.Host
	// DecodePlan turns a request body into a plan; a decode error is the
	// 400 response's message. Default: DecodePlan.
	DecodePlan func(body []byte, contentType string) (*datapb.CompactionPlan, error)
	Plugins    PluginLister  // optional: GET /v1/plugins and plugin metrics
	Pool       *mempool.Pool // optional: pool metrics and slots (default: Host's pool)
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

// Server queues plans on a host.Executor and serves the HTTP API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	started time.Time
	exec    *host.Executor
	mux     *http.ServeMux
	handler http.Handler // mux behind the access log

	mu       sync.Mutex
	rejected map[string]int64 // refusals before the executor: bad_plan, too_large, shutting_down
}

// New validates cfg, starts the executor's workers and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.Compactor == nil && cfg.Host == nil {
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
	if cfg.Pool == nil && cfg.Host != nil {
		cfg.Pool = cfg.Host.Pool()
	}
	ecfg := host.ExecutorConfig{
		Workers: cfg.Workers, Queue: cfg.Queue, History: cfg.History, TaskTimeout: cfg.TaskTimeout,
		CancelGrace: cfg.CancelGrace, Pool: cfg.Pool, Logger: cfg.Logger,
		// DecodePlan is where serve checks plans (400); the executor takes
		// whatever it accepted.
		Validate: func(*datapb.CompactionPlan) error { return nil },
	}
	if c := cfg.Compactor; c != nil {
		ecfg.Run = func(ctx context.Context, plan *datapb.CompactionPlan, rep host.TaskReporter, _ ...host.CompactOption) (*datapb.CompactionPlanResult, error) {
			return c.Compact(ctx, plan, reporter{rep})
		}
	}
	exec, err := host.NewExecutor(cfg.Host, ecfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now(), exec: exec, rejected: map[string]int64{}}
	s.routes()
	return s, nil
}

// reporter hands a Compactor's reports to the executor.
type reporter struct{ rep host.TaskReporter }

func (r reporter) Plugin(id host.PluginID) { r.rep.Plugin(id) }

func (r reporter) Progress(p Progress) {
	r.rep.Progress(host.Progress{DeletesRead: p.DeletesRead, RowsRead: p.RowsRead, BytesRead: p.BytesRead,
		RowsWritten: p.RowsWritten, BytesWritten: p.BytesWritten})
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
// after that. Calling it again waits again (host.Executor.Close).
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.exec.Close(ctx); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.exec.Closing() }
