package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/pipeline"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// Defaults of Options' zero values.
const (
	DefaultRootPath    = "files"
	DefaultBatchRows   = 8192
	DefaultMemoryBytes = 2 << 30
	// DefaultUploadParallelism bounds the output objects encoded and
	// uploaded at once.
	DefaultUploadParallelism = 4
)

// Storage versions for Options.OutputStorageVersion, numbered as Milvus's
// segcore numbers them (Milvus's Go code calls v1 0).
const (
	StorageFromPlan = 0 // json_params.storage_version: 2 is v2, anything else v1
	StorageV1       = 1 // binlogs with a descriptor, one file per field per chunk
	StorageV2       = 2 // packed column-group Parquet files (Milvus 2.6's default)
)

// ErrInvalidPlan is wrapped by every plan validation error.
var ErrInvalidPlan = pipeline.ErrInvalidPlan

// Options configures a Host. Store is required.
type Options struct {
	// Store holds the collection's binlogs; outputs are written to it.
	Store objstore.Store
	// RootPath is Milvus's rootPath, the prefix of every log key
	// (default DefaultRootPath, "files").
	RootPath string
	// Runtime runs the wasm strategies. Nil creates one from RuntimeConfig,
	// closed by Host.Close.
	Runtime       *Runtime
	RuntimeConfig Config
	// Plugins finds a plan's strategy by compaction type: the active plugin
	// named "mix" or "l0". A CompactOption (WithPlugin, Native) overrides it.
	Plugins *Registry
	// Pool leases the memory of every task; nil creates a pool of
	// MemoryBytes (default DefaultMemoryBytes).
	Pool        *mempool.Pool
	MemoryBytes int64
	// Logger receives pipeline and runtime logs (default: none).
	Logger hclog.Logger
	// Progress, if set, is called at batch granularity with the task's
	// counters, from the goroutine driving the strategy (one call at a time
	// per task; tasks run concurrently call it concurrently).
	Progress func(Progress)
	// BatchRows is the most rows per batch (default DefaultBatchRows; a
	// manifest asking for fewer gets fewer).
	BatchRows int
	// ReadParallelism bounds the binlogs downloaded and decoded at once per
	// input segment and the deltalogs read at once (default GOMAXPROCS).
	ReadParallelism int
	// UploadParallelism bounds the output binlogs encoded and uploaded at
	// once (default DefaultUploadParallelism).
	UploadParallelism int
	// TaskTimeout bounds a whole task, the strategy's deadline included
	// (default: the runtime's TaskTimeout).
	TaskTimeout time.Duration
	// CleanupTimeout bounds the deletion of a failed task's outputs,
	// failed deletes retried with backoff meanwhile, so that a short
	// object-store outage is waited out (default 1 minute). Objects still
	// there after it are logged as one WARN line and named in the error.
	CleanupTimeout time.Duration
	// OutputStorageVersion overrides the storage version of mix outputs,
	// which otherwise follows the plan's json_params.storage_version:
	// StorageFromPlan (0), StorageV1 (1) or StorageV2 (2). Inputs are
	// always read in their own versions.
	OutputStorageVersion int64
	// SplitPolicy chooses the column groups of storage-v2 outputs; nil
	// means Milvus's DataNode defaults (packed.DefaultSplitPolicy).
	SplitPolicy *packed.SplitPolicy
	// DownloadLimit is the largest storage-v2 input file downloaded whole
	// (default mempool.DefaultDownloadLimit, 64 MiB); larger files, and
	// files whose log_size the plan leaves out, are read in place with
	// ranged reads, a row group at a time, and the lease counts them so.
	// Negative reads every v2 file in place.
	DownloadLimit int64
	// FieldOptions overrides the binlog writer options per field ID, e.g.
	// uncompressed vectors. Default: Milvus's (ZSTD level 3).
	FieldOptions map[int64]binlog.WriterOptions
	// LimitHeap keeps the Go runtime's soft memory limit
	// (debug.SetMemoryLimit) at HeapLimitBase plus the host shares of the
	// running mix tasks' leases (plus, for a native strategy, whose memory
	// is Go heap, its grant less the wasm module base it reserves), so the
	// garbage collector works to keep the
	// process within what the pool granted instead of letting the heap
	// grow to twice the live data. The limit is process-wide: set this
	// only when the host owns the process, as compact-host does. An
	// operator's GOMEMLIMIT takes precedence.
	LimitHeap bool
}

// Progress is a snapshot of a running task's counters.
type Progress struct {
	PlanID       int64
	Stage        string // "deletes", "rows", "done"
	DeletesRead  int64  // delete records delivered to the strategy
	RowsRead     int64  // input rows delivered to the strategy
	BytesRead    int64  // their uncompressed bytes (row sizes)
	RowsWritten  int64  // rows appended to outputs (mix) or delete records written (L0)
	BytesWritten int64  // uncompressed bytes of the rows written (mix)
	Deleted      int64  // mix, at "done": rows the strategy dropped as deleted
	Expired      int64  // mix, at "done": rows the strategy dropped as expired
	Dropped      int64  // mix, at "done": rows the strategy dropped for another reason (ABI.md 9.5)
}

// Host compacts Milvus plans through sandboxed strategies. It is safe for
// concurrent use: tasks share the runtime and lease memory from the pool.
type Host struct {
	opts      Options
	rt        *Runtime
	ownRT     bool
	pool      *mempool.Pool
	log       hclog.Logger
	mu        sync.Mutex
	manifests map[string]abi.Manifest // by plugin sha256
	ranges    OutputRanges            // of the running tasks
}

// New checks opts and returns a Host.
func New(ctx context.Context, opts Options) (*Host, error) {
	if opts.Store == nil {
		return nil, errors.New("host: Options.Store is required")
	}
	if opts.RootPath == "" {
		opts.RootPath = DefaultRootPath
	}
	opts.RootPath = strings.Trim(opts.RootPath, "/")
	switch opts.OutputStorageVersion {
	case StorageFromPlan, StorageV1, StorageV2:
	default:
		return nil, fmt.Errorf("host: Options.OutputStorageVersion %d is not one of 0 (from the plan), 1 (storage v1), 2 (storage v2)", opts.OutputStorageVersion)
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.BatchRows > abi.MaxBatchRows {
		return nil, fmt.Errorf("host: Options.BatchRows %d exceeds the ABI limit %d", opts.BatchRows, abi.MaxBatchRows)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.ReadParallelism <= 0 {
		opts.ReadParallelism = runtime.GOMAXPROCS(0)
	}
	if opts.UploadParallelism <= 0 {
		opts.UploadParallelism = DefaultUploadParallelism
	}
	h := &Host{opts: opts, rt: opts.Runtime, pool: opts.Pool, log: opts.Logger.Named("compact"), manifests: map[string]abi.Manifest{}}
	if h.rt == nil {
		cfg := opts.RuntimeConfig
		if cfg.Logger == nil {
			cfg.Logger = opts.Logger
		}
		rt, err := NewRuntime(ctx, cfg)
		if err != nil {
			return nil, err
		}
		h.rt, h.ownRT = rt, true
	}
	if h.pool == nil {
		size := opts.MemoryBytes
		if size <= 0 {
			size = DefaultMemoryBytes
		}
		pool, err := mempool.NewPool(size)
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		h.pool = pool
	}
	if h.opts.TaskTimeout <= 0 {
		h.opts.TaskTimeout = h.rt.cfg.TaskTimeout
	}
	return h, nil
}

// Runtime returns the host's wasm runtime.
func (h *Host) Runtime() *Runtime { return h.rt }

// Pool returns the pool tasks lease memory from.
func (h *Host) Pool() *mempool.Pool { return h.pool }

// Close closes the runtime if New created it. Finish running tasks first.
func (h *Host) Close(ctx context.Context) error {
	if h.ownRT {
		return h.rt.Close(ctx)
	}
	return nil
}

// CompactOption adjusts one Compact call.
type CompactOption func(*compactOptions)

type compactOptions struct {
	plugin   *Plugin
	native   *nativeStrategy
	chosen   func(PluginID)
	progress func(Progress)
}

// OnStrategy calls f with the strategy's identity once Compact has chosen
// it, before it runs: a caller that lets the registry choose learns which
// binary ran the plan. Several OnStrategy options are all called.
func OnStrategy(f func(PluginID)) CompactOption {
	return func(o *compactOptions) { o.chosen = chain(o.chosen, f) }
}

// OnProgress calls f with this task's counters, like Options.Progress
// (which is called too) but for one Compact call. Several OnProgress
// options are all called.
func OnProgress(f func(Progress)) CompactOption {
	return func(o *compactOptions) { o.progress = chain(o.progress, f) }
}

// chain returns a function calling first, then next; nil if both are.
func chain[T any](first, next func(T)) func(T) {
	switch {
	case first == nil:
		return next
	case next == nil:
		return first
	}
	return func(v T) { first(v); next(v) }
}

// WithPlugin runs the plan through p instead of the registry's plugin.
func WithPlugin(p *Plugin) CompactOption {
	return func(o *compactOptions) { o.plugin, o.native = p, nil }
}

// CompactError is returned by Compact for any failure after decoding: it
// names the plan, the strategy (when one was chosen) and the pipeline stage
// ("validate", "reserve", "strategy", "memory", "setup", "read", "write"). Unwrap
// gives the cause: a *TaskError for strategy failures (errors.Is with
// ErrTrap, ErrOutOfMemory, ErrDeadline, ErrABIMisuse, ...), ErrInvalidPlan
// for bad plans, storage errors for reads and writes. A task stopped by its
// timeout, the caller's deadline or a cancel matches ErrDeadline whichever
// stage noticed, and its message says what ended it ("task timeout 1s
// exceeded") and which stage noticed.
type CompactError struct {
	PlanID int64
	Type   string   // "mix" or "l0" ("" if the plan type was not understood)
	Plugin PluginID // zero before a strategy was chosen
	Stage  string
	Err    error
}

func (e *CompactError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host: compact plan %d", e.PlanID)
	if e.Type != "" || e.Plugin.Name != "" {
		b.WriteString(" (")
		b.WriteString(e.Type)
		if e.Plugin.Name != "" {
			if e.Type != "" {
				b.WriteString(", ")
			}
			b.WriteString("plugin ")
			b.WriteString(e.Plugin.String())
		}
		b.WriteString(")")
	}
	var de *deadlineError
	if errors.As(e.Err, &de) {
		fmt.Fprintf(&b, ": %s, noticed in stage %s: %v", de.reason, e.Stage, de.err)
		return b.String()
	}
	fmt.Fprintf(&b, ": %s: %v", e.Stage, e.Err)
	return b.String()
}

// deadlineError is a task failure after its context ended: reason says what
// ended it (the task timeout, the caller's deadline or cancel), err is what
// the stage that noticed returned. It matches ErrDeadline.
type deadlineError struct {
	reason string
	err    error
}

func (e *deadlineError) Error() string        { return e.reason + ": " + e.err.Error() }
func (e *deadlineError) Unwrap() error        { return e.err }
func (e *deadlineError) Is(target error) bool { return target == ErrDeadline }

// deadlineReason names what ended a task started at started whose own
// deadline (started + timeout) is own.
func deadlineReason(ctx context.Context, started, own time.Time, timeout time.Duration) string {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return c.Error() // the caller said why it ended the task (an Executor's timeout or cancel)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Sprintf("task cancelled after %s", time.Since(started).Round(time.Millisecond))
	}
	if d, ok := ctx.Deadline(); ok && d.Before(own) {
		return fmt.Sprintf("the caller's deadline %s passed %s into the task", d.Format(time.RFC3339Nano), d.Sub(started).Round(time.Millisecond))
	}
	return fmt.Sprintf("task timeout %s exceeded", timeout)
}

func (e *CompactError) Unwrap() error { return e.Err }

// DecodePlan decodes a Milvus datapb.CompactionPlan given as protojson (the
// first non-space byte is '{') or binary protobuf. Unknown JSON fields are
// ignored, except a manifest path (see DecodePlanJSON).
func DecodePlan(b []byte) (*datapb.CompactionPlan, error) {
	if trimmed := strings.TrimSpace(string(b)); strings.HasPrefix(trimmed, "{") {
		plan, err := DecodePlanJSON([]byte(trimmed))
		if err != nil {
			return nil, fmt.Errorf("host: decode plan (protojson): %w", err)
		}
		return plan, nil
	}
	plan := new(datapb.CompactionPlan)
	if err := decodeMessage(b, plan); err != nil {
		return nil, fmt.Errorf("host: decode plan %w", err)
	}
	return plan, nil
}

// decodeMessage fills m from protojson or binary protobuf; the error says
// which it took b for.
func decodeMessage(b []byte, m proto.Message) error {
	trimmed := strings.TrimSpace(string(b))
	if trimmed == "" {
		return errors.New("(empty input)")
	}
	if trimmed[0] == '{' {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(trimmed), m); err != nil {
			return fmt.Errorf("(protojson): %w", err)
		}
		return nil
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("(binary protobuf): %w", err)
	}
	return nil
}

// ValidatePlan checks a plan the way Compact does before it touches storage (the rules of
// Milvus's DataNode: type, segments, pre-allocated ID ranges, schema and primary key,
// json_params; and the host's: output ranges that hold no input ID and fit the worst case,
// positive IDs, nothing listed twice, no negative sizes, nothing the pipeline does not support
// yet). The error wraps ErrInvalidPlan and names the plan. A server can use it to refuse a
// plan at submission instead of failing the task later.
func ValidatePlan(plan *datapb.CompactionPlan) error {
	_, err := pipeline.Validate(plan)
	return err
}
