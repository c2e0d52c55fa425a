package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// Guest is the strategy of one task: a wasm instance or a natively linked
// strategy driven from the same bytes.
type Guest interface {
	Manifest() abi.Manifest
	Begin(ctx context.Context, task []byte) error
	Send(ctx context.Context, h abi.BatchHeader, cols []abi.ColumnData) error
	Finish(ctx context.Context) error
}

// Sink receives what the guest hands the host during a call; the host
// wires Emit and Probe to the instance's callbacks. An error fails the
// call as ABI misuse.
type Sink struct {
	emit  func(kind abi.EmitKind, data []byte) error
	probe func(pairs, hits []byte) error
}

// Emit handles one decisions buffer (a view valid during the call).
func (s *Sink) Emit(kind abi.EmitKind, data []byte) error {
	if s.emit == nil {
		return errors.New("decisions emitted outside a task")
	}
	return s.emit(kind, data)
}

// Probe answers an L0 bloom probe.
func (s *Sink) Probe(pairs, hits []byte) error {
	if s.probe == nil {
		return errors.New("probe outside an L0 task")
	}
	return s.probe(pairs, hits)
}

// Start creates the guest for one attempt, connected to sink.
type Start func(ctx context.Context, sink *Sink) (Guest, error)

// Progress is a snapshot of a task's counters.
type Progress struct {
	PlanID       int64
	Stage        string // "deletes", "rows", "write", "done"
	DeletesRead  int64  // delete records delivered to the strategy
	RowsRead     int64  // input rows delivered to the strategy
	BytesRead    int64  // their uncompressed bytes (row sizes)
	RowsWritten  int64  // rows appended to outputs (mix) or delete records written (L0)
	BytesWritten int64  // their uncompressed bytes
	Deleted      int64  // mix, at "done": rows the strategy dropped as deleted
	Expired      int64  // mix, at "done": rows the strategy dropped as expired
	Dropped      int64  // mix, at "done": rows the strategy dropped for another reason (the counters' other)
}

// Config is the host side of a run.
type Config struct {
	Store             objstore.Store
	Root              string
	Grant             uint64 // the strategy's memory grant (task memory_grant)
	BatchRows         int
	ReadParallelism   int
	UploadParallelism int
	FieldOptions      map[int64]binlog.WriterOptions
	// OutputVersion overrides the plan's output storage version: 0 follows
	// json_params, 1 writes storage v1, 2 storage v2.
	OutputVersion int64
	SplitPolicy   *packed.SplitPolicy // v2 column groups; nil means Milvus's defaults
	DownloadLimit int64               // largest v2 input file downloaded whole (segread.Options.DownloadLimit)
	Progress      func(Progress)
	Logger        hclog.Logger
	// HeldBudget is the row bytes of input batches held for the write stage
	// beyond which the strategy waits for the write stage to catch up with
	// its decisions (default 64 MiB).
	HeldBudget int64
	// CleanupTimeout bounds the deletion of created objects after a
	// failure, failed deletes retried with backoff meanwhile (default 1
	// minute).
	CleanupTimeout time.Duration
}

// Counts are the strategy's counters summed over the task.
type Counts struct {
	Input   int64 // rows delivered
	Deleted int64
	Expired int64
	Dropped int64 // rows dropped for a reason of the strategy's own (the counters' other)
	Kept    int64 // rows written
	Deletes int64 // delete records delivered
	Routed  int64 // L0: delete records written to targets
	// HeldPeak is the most row bytes of input batches the host held at
	// once waiting for the strategy's decisions (mix).
	HeldPeak int64
}

// Result is a finished run.
type Result struct {
	Result *datapb.CompactionPlanResult
	Counts Counts
}

// Run executes a validated plan through the guest start creates. Outputs
// are created, never overwritten, so inputs and any other existing object
// are never written. On error every object the run created has been
// deleted, except those the error names as left for the operator's sweep.
func Run(ctx context.Context, p *Plan, cfg Config, start Start) (*Result, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 8192
	}
	if cfg.HeldBudget <= 0 {
		cfg.HeldBudget = 64 << 20
	}
	if cfg.CleanupTimeout <= 0 {
		cfg.CleanupTimeout = time.Minute
	}
	filled := proto.Clone(p.CompactionPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(cfg.Root, filled); err != nil {
		return nil, stageErr("validate", fmt.Errorf("%w: %v", ErrInvalidPlan, err))
	}
	q := *p
	q.CompactionPlan = filled
	if p.Type == abi.CompactionL0 {
		return runL0(ctx, &q, cfg, start)
	}
	return runMix(ctx, &q, cfg, start)
}

// failure keeps the first root cause of a run and cancels it.
type failure struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (f *failure) set(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		f.cancel()
	}
	return f.err
}

func (f *failure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// maxLoggedKeys bounds the keys the WARN line about a failed cleanup lists.
const maxLoggedKeys = 20

// cleanup runs del, which deletes the objects the failed run created,
// under a context that lives cfg.CleanupTimeout even when the run's own
// was cancelled, and returns the run's error err extended by what the
// cleanup left. Objects left behind are logged as one WARN line with their
// count, common prefix and first keys, for the operator's sweep.
func cleanup(ctx context.Context, cfg Config, planID int64, err error, del func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.CleanupTimeout)
	defer cancel()
	derr := del(cctx)
	if derr == nil {
		return err
	}
	var left *segwrite.LeftError
	if errors.As(derr, &left) {
		cfg.Logger.Warn("failed task left objects in the store; sweep them", "plan", planID, "count", len(left.Keys),
			"prefix", left.Prefix(), "store", left.Store, "unsure", left.Unsure,
			"keys", left.Keys[:min(len(left.Keys), maxLoggedKeys)], "error", left.LastErr)
	}
	// Inside the StageError, so that callers unwrapping the stage keep it.
	var se *StageError
	if errors.As(err, &se) {
		se.Err = fmt.Errorf("%w (cleanup: %w)", se.Err, derr)
		return err
	}
	return fmt.Errorf("%w (cleanup: %w)", err, derr)
}

// readAllDeletes reads every segment's deltalogs (idx selects the
// segments), at most par at a time.
func readAllDeletes(ctx context.Context, store objstore.Store, pkType schemapb.DataType, segs []*datapb.CompactionSegmentBinlogs, idx []int, par int) ([]*deltalog.Deletes, error) {
	out := make([]*deltalog.Deletes, len(segs))
	errs := make([]error, len(segs))
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = segread.ReadDeletes(ctx, store, pkType, segs[i])
		}()
	}
	wg.Wait()
	for _, i := range idx {
		if errs[i] != nil {
			return nil, errs[i]
		}
	}
	return out, nil
}

// int64View reinterprets delete timestamps (below 2^63) as the int64
// column the ABI carries, without copying.
func int64View(ts []uint64) []int64 {
	if len(ts) == 0 {
		return []int64{}
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(&ts[0])), len(ts))
}

// sendDeletes delivers d as deletes batches of segment seg, numbering
// records from *next (the global delete index), at most rows per batch.
func sendDeletes(ctx context.Context, g Guest, pkID int64, seg uint32, d *deltalog.Deletes, next *uint64, rows int) error {
	ts := int64View(d.Timestamps)
	for lo := 0; lo < d.Len(); lo += rows {
		hi := min(lo+rows, d.Len())
		var pk abi.ColumnData
		if d.PKType == schemapb.DataType_VarChar {
			pk = abi.StringData(pkID, d.StrPKs[lo:hi])
		} else {
			pk = abi.Int64Data(pkID, d.IntPKs[lo:hi])
		}
		cols := []abi.ColumnData{pk, abi.Int64Data(abi.FieldIDTimestamp, ts[lo:hi])}
		h := abi.BatchHeader{Kind: abi.BatchDeletes, Segment: seg, FirstRow: *next, Rows: hi - lo}
		if err := g.Send(ctx, h, cols); err != nil {
			return err
		}
		*next += uint64(hi - lo)
	}
	return nil
}

// beginTask encodes and sends the task document.
func beginTask(ctx context.Context, g Guest, t *abi.Task) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("pipeline: task for plan %d: %w", t.PlanID, err)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("pipeline: task for plan %d: %w", t.PlanID, err)
	}
	return g.Begin(ctx, b)
}

// StageError names the pipeline stage a failure came from.
type StageError struct {
	Stage string // "read", "deletes", "strategy", "write", "setup"
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

func stageErr(stage string, err error) error {
	if err == nil {
		return nil
	}
	var se *StageError
	if errors.As(err, &se) {
		return err
	}
	return &StageError{Stage: stage, Err: err}
}
