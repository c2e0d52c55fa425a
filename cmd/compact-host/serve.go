package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"github.com/spf13/cobra"

	"github.com/compacthost/compacthost/cmd/compact-host/internal/server"
	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/mempool"
)

type serveOptions struct {
	listen          string
	plugins         string
	pollInterval    time.Duration
	memory          humanBytes
	policy          string
	workers         int
	queue           int
	history         int
	taskTimeout     time.Duration
	shutdownTimeout time.Duration
	cacheDir        string
	version         outputVersion
	rootPath        string
	logJSON         bool
	logLevel        string

	tokenFile         string
	insecureNoAuth    bool
	openHealthMetrics bool
	tlsCert, tlsKey   string
	readHeaderTimeout time.Duration
	bodyTimeout       time.Duration
	idleTimeout       time.Duration
	admitTimeout      time.Duration
	rollbackFailures  int
	rollbackWindow    int
}

func newServeCommand() *cobra.Command {
	var (
		sf storageFlags
		o  = serveOptions{memory: humanBytes(host.DefaultMemoryBytes)}
	)
	twins := envTwins{
		"listen": "COMPACT_HOST_LISTEN", "plugins": "COMPACT_HOST_PLUGINS", "poll-interval": "COMPACT_HOST_POLL_INTERVAL",
		"memory": "COMPACT_HOST_MEMORY", "policy": "COMPACT_HOST_POLICY", "workers": "COMPACT_HOST_WORKERS",
		"queue": "COMPACT_HOST_QUEUE", "history": "COMPACT_HOST_HISTORY", "task-timeout": "COMPACT_HOST_TASK_TIMEOUT",
		"shutdown-timeout": "COMPACT_HOST_SHUTDOWN_TIMEOUT", "cache-dir": "COMPACT_HOST_CACHE_DIR",
		"storage-version": "COMPACT_HOST_STORAGE_VERSION", "root-path": "COMPACT_HOST_ROOT_PATH", "log-json": "COMPACT_HOST_LOG_JSON", "log-level": "COMPACT_HOST_LOG_LEVEL",
		"token-file": "COMPACT_HOST_TOKEN_FILE", "insecure-no-auth": "COMPACT_HOST_INSECURE_NO_AUTH",
		"open-health-metrics": "COMPACT_HOST_OPEN_HEALTH_METRICS", "tls-cert": "COMPACT_HOST_TLS_CERT", "tls-key": "COMPACT_HOST_TLS_KEY",
		"read-header-timeout": "COMPACT_HOST_READ_HEADER_TIMEOUT", "body-timeout": "COMPACT_HOST_BODY_TIMEOUT",
		"idle-timeout": "COMPACT_HOST_IDLE_TIMEOUT", "admit-timeout": "COMPACT_HOST_ADMIT_TIMEOUT",
		"rollback-failures": "COMPACT_HOST_ROLLBACK_FAILURES", "rollback-window": "COMPACT_HOST_ROLLBACK_WINDOW",
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a long-lived compaction worker with an HTTP API",
		Long: `serve runs compaction plans submitted over HTTP. Strategy plugins (name@version.wasm) are loaded
from --plugins, a local directory or an object-store prefix, and hot-reloaded: drop in a higher
version and new tasks use it while running tasks finish on the old one. Plans wait in a bounded
queue for one of --workers workers; the memory pool (--memory, resized over the day by --policy,
and with a load: policy following the memory the machine or its cgroup has available) decides
how many really run at once.

  POST /v1/plans       submit a plan (protojson, or binary protobuf with
                       Content-Type application/x-protobuf): 202 {"task_id": ...};
                       400 bad plan, 409 plan already queued or running,
                       429 queue full (with Retry-After), 503 shutting down
  GET  /v1/tasks/{id}  state (queued, running, succeeded, failed), timestamps,
                       progress, the plugin that ran it (name, version, sha256),
                       the CompactionPlanResult or the error and its cause
  GET  /v1/tasks       recent tasks, newest first (?state=failed&limit=10)
  GET  /v1/plugins     plugin binaries: name, version, sha256, state (active,
                       standby, loading, refused), error
  GET  /healthz        200 while serving, 503 while shutting down
  GET  /metrics        Prometheus text format (compact_host_*)

Authentication: with a token (--token-file, or the token itself in $COMPACT_HOST_TOKEN; at
least 16 bytes) every request must send "Authorization: Bearer <token>" or gets 401;
--open-health-metrics exempts GET /healthz and GET /metrics. Without a token serve refuses to
start (exit 2) on an address other than localhost or a loopback IP unless --insecure-no-auth
is given. --tls-cert and --tls-key serve HTTPS. A client gets --read-header-timeout for its
headers and --body-timeout for its body; keep-alive connections close after --idle-timeout.

Plugins: each new or changed binary is admitted in its own goroutine (listed as loading
meanwhile) and refused if admission and its trial start take longer than --admit-timeout. A
new version whose tasks fail --rollback-failures times in a row by the strategy's own fault
(trap, panic, out of memory, ABI misuse, error, deadline inside the strategy; not storage or
plan errors) within its first --rollback-window tasks is rolled back: it is listed as refused
with the reason and the next highest admitted version serves again.

SIGINT or SIGTERM shuts down gracefully: new plans get 503, running tasks finish (for at most
--shutdown-timeout, then they are cancelled and their outputs deleted), queued ones fail with
cause "shutdown", and the process exits 0. A second signal exits at once.`,
		Example: `  compact-host serve --storage ./compact-data --plugins ./plugins --memory 4GiB
  compact-host serve --storage ./compact-data --plugins ./plugins --memory 16GiB \
      --policy 'window:08:00-20:00=0.25,default=1;load:0.5,min=1GiB'
  compact-host serve --storage s3://bucket/files --endpoint 127.0.0.1:9000 --insecure \
      --plugins s3://bucket/plugins --policy 'window:08:00-20:00=0.25,default=1' --log-json
  curl -sS --data-binary @plans/mix-plan.json localhost:8080/v1/plans
  COMPACT_HOST_TOKEN=$(cat /run/secrets/ch-token) compact-host serve --listen 0.0.0.0:8443 \
      --tls-cert server.crt --tls-key server.key --open-health-metrics --storage ./compact-data
  curl -sS -H "Authorization: Bearer $(cat /run/secrets/ch-token)" https://host:8443/v1/tasks`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := twins.apply(cmd.Flags()); err != nil {
				return err
			}
			return runServe(cmd.Context(), &sf, o)
		},
	}
	sf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "HTTP listen address (port 0 picks a free port; the log names it)")
	fs.StringVar(&o.plugins, "plugins", "./plugins.d", "plugin binaries (name@version.wasm): a directory, or a store URL such as s3://bucket/plugins")
	fs.DurationVar(&o.pollInterval, "poll-interval", 2*time.Second, "how often the plugin source is checked for new, changed or removed binaries")
	fs.Var(&o.memory, "memory", "the node's memory budget for compaction, e.g. 4GiB or 512MiB")
	fs.StringVar(&o.policy, "policy", "static:1", policyUsage)
	fs.IntVar(&o.workers, "workers", server.DefaultWorkers, "plans running at once at most (the memory pool may hold some waiting)")
	fs.IntVar(&o.queue, "queue", server.DefaultQueue, "plans waiting for a worker before submissions get 429")
	fs.IntVar(&o.history, "history", server.DefaultHistory, "finished tasks kept for GET /v1/tasks")
	fs.DurationVar(&o.taskTimeout, "task-timeout", host.DefaultTaskTimeout, "deadline of one task, from when it starts running")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "on SIGTERM, how long running tasks may finish before they are cancelled")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "directory for wazero's compiled-code cache (default: in memory)")
	fs.Var(&o.version, "storage-version", storageVersionUsage)
	fs.StringVar(&o.rootPath, "root-path", host.DefaultRootPath, "Milvus rootPath: the prefix of every log key in the store")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines on stderr")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the API bearer token (or set the token itself in $"+tokenEnv+")")
	fs.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "serve without a token on a non-loopback --listen address")
	fs.BoolVar(&o.openHealthMetrics, "open-health-metrics", false, "serve GET /healthz and GET /metrics without the token")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS; needs --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&o.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "how long a client may take to send a request's body (a plan)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "close keep-alive connections idle this long")
	fs.DurationVar(&o.admitTimeout, "admit-timeout", host.DefaultAdmitTimeout, "how long one plugin binary's admission (read, compile, trial start) may take before it is refused")
	fs.IntVar(&o.rollbackFailures, "rollback-failures", host.DefaultRollbackFailures, "roll a new plugin version back after this many consecutive strategy failures (0: off)")
	fs.IntVar(&o.rollbackWindow, "rollback-window", host.DefaultRollbackWindow, "a version is watched for --rollback-failures during its first this many tasks only")
	twins.describe(fs)
	return cmd
}

// checkServeOptions rejects flag values that cannot work.
func checkServeOptions(o serveOptions) (mempool.Policy, hclog.Level, error) {
	bad := func(format string, args ...any) (mempool.Policy, hclog.Level, error) {
		return nil, 0, withCode(exitUsage, fmt.Errorf(format, args...))
	}
	switch {
	case o.memory <= 0:
		return bad("--memory must be positive, got %s", o.memory.String())
	case o.workers < 1:
		return bad("--workers must be >= 1, got %d", o.workers)
	case o.queue < 1:
		return bad("--queue must be >= 1, got %d", o.queue)
	case o.history < 1:
		return bad("--history must be >= 1, got %d", o.history)
	case o.pollInterval <= 0 || o.taskTimeout <= 0 || o.shutdownTimeout <= 0:
		return bad("--poll-interval, --task-timeout and --shutdown-timeout must be positive")
	case o.readHeaderTimeout <= 0 || o.bodyTimeout <= 0 || o.idleTimeout <= 0 || o.admitTimeout <= 0:
		return bad("--read-header-timeout, --body-timeout, --idle-timeout and --admit-timeout must be positive")
	case o.rollbackFailures < 0 || o.rollbackWindow < 1:
		return bad("--rollback-failures must be >= 0 and --rollback-window >= 1, got %d and %d", o.rollbackFailures, o.rollbackWindow)
	case o.rollbackFailures > o.rollbackWindow:
		return bad("--rollback-failures %d cannot be reached within --rollback-window %d", o.rollbackFailures, o.rollbackWindow)
	case o.plugins == "":
		return bad("--plugins names no directory or store")
	}
	policy, err := mempool.ParsePolicy(o.policy)
	if err != nil {
		return bad("--policy: %w", err)
	}
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return bad("--log-level %q: want trace, debug, info, warn or error", o.logLevel)
	}
	return policy, level, nil
}

func runServe(parent context.Context, sf *storageFlags, o serveOptions) error {
	policy, level, err := checkServeOptions(o)
	if err != nil {
		return err
	}
	sec, err := loadServeSecurity(o)
	if err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "compact-host", Output: os.Stderr, JSONFormat: o.logJSON, Level: level})

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()

	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	src, err := pluginSource(ctx, sf, o.plugins)
	if err != nil {
		return err
	}

	pool, ctrl, err := newPolicyPool(policy, int64(o.memory))
	if err != nil {
		return err
	}
	ctrl.OnChange = func(c mempool.Change) {
		if c.Err != nil {
			log.Error("memory pool resize failed", "policy", policy.String(), "pool", formatHumanBytes(c.New), "error", c.Err)
			return
		}
		args := []any{"policy", policy.String(), "from", formatHumanBytes(c.Old), "to", formatHumanBytes(c.New)}
		if m := c.Memory; m != nil {
			args = append(args, "available", formatHumanBytes(m.Available), "limit", formatHumanBytes(m.Limit), "bounded_by", m.From)
		}
		log.Info("memory pool resized", args...)
	}

	rt, err := host.NewRuntime(ctx, host.Config{CacheDir: o.cacheDir, TaskTimeout: o.taskTimeout, Logger: log})
	if err != nil {
		return fmt.Errorf("start wasm runtime: %w", err)
	}
	defer rt.Close(context.Background())
	rollback := o.rollbackFailures
	if rollback == 0 {
		rollback = -1 // off
	}
	reg := host.NewRegistry(rt, src, host.RegistryConfig{Interval: o.pollInterval, AdmitTimeout: o.admitTimeout,
		RollbackFailures: rollback, RollbackWindow: o.rollbackWindow, MaxMemory: int64(o.memory), Logger: log})
	defer reg.Close()
	if err := reg.Poll(ctx); err != nil {
		return withCode(exitNotFound, fmt.Errorf("plugins %s: %w", src, err))
	}

	h, err := host.New(ctx, host.Options{
		Store: store, RootPath: o.rootPath, Runtime: rt, Plugins: reg, Pool: pool,
		Logger: log, TaskTimeout: o.taskTimeout, LimitHeap: true,
		OutputStorageVersion: int64(o.version),
	})
	if err != nil {
		return err
	}
	defer h.Close(context.Background())

	srv, err := server.New(server.Config{
		Host: h, Plugins: reg, Pool: pool,
		Workers: o.workers, Queue: o.queue, History: o.history,
		TaskTimeout: o.taskTimeout, ShutdownTimeout: o.shutdownTimeout,
		Logger:     log.Named("server"),
		DecodePlan: decodeAndValidatePlan,
		Token:      sec.token, OpenHealthMetrics: o.openHealthMetrics, TLS: sec.tls,
		ReadHeaderTimeout: o.readHeaderTimeout, BodyTimeout: o.bodyTimeout, IdleTimeout: o.idleTimeout,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--listen %s: %w", o.listen, err))
	}

	// The registry and the pool controller run until the server is done.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); reg.Watch(bg) }()
	go func() { defer wg.Done(); ctrl.Run(bg) }()
	defer func() { stopBG(); wg.Wait() }()

	var active []string
	for _, p := range reg.Plugins() {
		if p.Active {
			active = append(active, p.ID.String())
		}
	}
	if len(active) == 0 {
		log.Warn("no admitted plugins yet: plans fail with cause no_plugin until a name@version.wasm appears", "plugins", src.String())
	}
	if sec.token == "" && !loopbackListen(o.listen) {
		log.Warn("serving without authentication on a non-loopback address (--insecure-no-auth)", "addr", ln.Addr().String())
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", sec.tls != nil, "auth", sec.token != "", "storage", store.String(), "plugins", src.String(),
		"active", strings.Join(active, ", "), "pool", formatHumanBytes(pool.Total()), "policy", policy.String(),
		"workers", o.workers, "queue", o.queue)
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// pluginSource opens --plugins: a store URL (scheme://...) with the storage
// credentials, else a local directory.
func pluginSource(ctx context.Context, sf *storageFlags, spec string) (host.Source, error) {
	if !strings.Contains(spec, "://") {
		info, err := os.Stat(spec)
		if err != nil {
			return nil, withCode(exitNotFound, fmt.Errorf("--plugins %s: %w", spec, err))
		}
		if !info.IsDir() {
			return nil, withCode(exitUsage, fmt.Errorf("--plugins %s is not a directory", spec))
		}
		return host.DirSource(spec), nil
	}
	psf := *sf
	psf.url, psf.create = spec, false
	st, err := psf.open(ctx)
	if err != nil {
		return nil, err
	}
	return host.StoreSource(st, ""), nil
}

// decodeAndValidatePlan refuses a plan that breaks Milvus's rules at submission (400), instead of
// accepting it and failing the task later.
func decodeAndValidatePlan(body []byte, contentType string) (*datapb.CompactionPlan, error) {
	plan, err := server.DecodePlan(body, contentType)
	if err != nil {
		return nil, err
	}
	if err := host.ValidatePlan(plan); err != nil {
		return nil, err
	}
	return plan, nil
}
