package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/pipeline"
	"github.com/compacthost/compacthost/mempool"
)

// manifestProbeGrant is the grant of the trial instance that reads a
// plugin's manifest the first time the host uses it.
const manifestProbeGrant = 64 << 20

const wasmPage = 64 << 10

// Compact runs one compaction plan (mix or L0) end to end and returns
// Milvus's result. Stages: validate the plan (Milvus's rules), reserve its
// output ID ranges (a plan whose ranges overlap a running task's fails at
// once with ErrOutputRangesInUse), choose the strategy, estimate memory and
// lease it from the pool (a plan larger than the pool fails at once), start
// the strategy with its share as the memory grant, then stream deletes and rows through it while outputs are written.
// On any failure every object the task wrote is deleted, the instance is
// closed and the lease returned; inputs are never modified. A strategy that
// runs out of memory is retried once with twice the grant (at most the
// runtime's MaxGrant) when the pool can grow the lease right away. Re-running a plan writes identical bytes.
func (h *Host) Compact(ctx context.Context, plan *datapb.CompactionPlan, opts ...CompactOption) (_ *datapb.CompactionPlanResult, err error) {
	var co compactOptions
	for _, o := range opts {
		o(&co)
	}
	started := time.Now()
	own := started.Add(h.opts.TaskTimeout)
	ctx, cancel := context.WithDeadline(ctx, own)
	defer cancel()
	deadline, _ := ctx.Deadline()
	fail := func(p *pipeline.Plan, id PluginID, stage string, err error) error {
		ce := &CompactError{PlanID: plan.GetPlanID(), Plugin: id, Stage: stage}
		if p != nil {
			ce.Type = p.Type
		}
		var se *pipeline.StageError
		if errors.As(err, &se) {
			ce.Stage, err = se.Stage, se.Err
		}
		if ctx.Err() != nil || errors.Is(err, ErrDeadline) {
			// The task's deadline or the caller's cancel stopped it, whichever
			// stage noticed first; say which ended it, not only who noticed.
			err = &deadlineError{reason: deadlineReason(ctx, started, own, h.opts.TaskTimeout), err: err}
		}
		ce.Err = err
		h.log.Error("compaction failed", "plan", ce.PlanID, "type", ce.Type, "plugin", id.String(), "stage", ce.Stage, "error", ce.Err)
		return ce
	}
	p, err := pipeline.Validate(plan)
	if err != nil {
		return nil, fail(nil, PluginID{}, "validate", err)
	}
	release, err := h.ranges.Reserve(plan)
	if err != nil {
		return nil, fail(p, PluginID{}, "reserve", err)
	}
	defer release()
	s, err := h.strategyFor(ctx, p.Type, co)
	if err != nil {
		return nil, fail(p, PluginID{}, "strategy", err)
	}
	defer s.release()
	id := s.id()
	if co.chosen != nil {
		co.chosen(id)
	}
	if w, ok := s.(*wasmStrategy); ok && w.reg != nil {
		defer func() { w.reg.report(ctx, id, err) }() // the registry's rollback watch
	}

	grant, est, lease, err := h.leaseFor(ctx, p, s)
	if err != nil {
		return nil, fail(p, id, "memory", err)
	}
	defer func() {
		if rerr := h.pool.Return(lease); rerr != nil {
			h.log.Error("returning the task's lease failed", "plan", p.GetPlanID(), "error", rerr)
		}
	}()
	// Only mix tasks move the limit: Estimate models their data path; an L0
	// task holds deletes and stats logs it does not model yet, and a limit
	// at its small host share made the collector run back to back.
	if h.opts.LimitHeap && p.Type == abi.CompactionMix {
		share := est.Host
		if !s.wasm() {
			// A native strategy's data is Go heap too; the grant's base (a
			// wasm module's minimum memory and its Go runtime) is not.
			share += max(est.Strategy-est.GuestBase, 0)
		}
		defer reserveHeap(share)()
	}

	var res *pipeline.Result
	for attempt := 0; ; attempt++ {
		cfg := pipeline.Config{Store: h.opts.Store, Root: h.opts.RootPath, Grant: grant, BatchRows: h.opts.BatchRows,
			ReadParallelism: h.opts.ReadParallelism, UploadParallelism: h.opts.UploadParallelism,
			FieldOptions: h.opts.FieldOptions, Logger: h.log, HeldBudget: est.HostReadBatches,
			CleanupTimeout: h.opts.CleanupTimeout, OutputVersion: h.opts.OutputStorageVersion, SplitPolicy: h.opts.SplitPolicy,
			DownloadLimit: h.opts.DownloadLimit}
		if report := chain(h.opts.Progress, co.progress); report != nil {
			cfg.Progress = func(pr pipeline.Progress) { report(Progress(pr)) }
		}
		var closers []func()
		res, err = pipeline.Run(ctx, p, cfg, func(ctx context.Context, sink *pipeline.Sink) (pipeline.Guest, error) {
			g, err := s.start(ctx, h.rt, grant, deadline, sink)
			if err != nil {
				return nil, err
			}
			closers = append(closers, g.close)
			return g, nil
		})
		for _, c := range closers {
			c()
		}
		if err == nil || attempt > 0 || !errors.Is(err, ErrOutOfMemory) || !s.wasm() {
			break
		}
		next := min(grant*2, h.rt.cfg.MaxGrant)
		if next <= grant {
			break
		}
		if gerr := lease.TryGrow(int64(next - grant)); gerr != nil {
			h.log.Warn("strategy ran out of memory; the pool cannot grow the lease for a retry", "plan", p.GetPlanID(), "plugin", id.String(), "grant", grant, "error", gerr)
			break
		}
		h.log.Warn("strategy ran out of memory; retrying once with a larger grant", "plan", p.GetPlanID(), "plugin", id.String(), "grant", grant, "retry_grant", next)
		grant = next
	}
	if err != nil {
		return nil, fail(p, id, "strategy", err)
	}
	c := res.Counts
	took := time.Since(started)
	h.log.Info("compaction done", "plan", p.GetPlanID(), "type", p.Type, "plugin", id.String(),
		"segments_out", len(res.Result.GetSegments()), "rows_in", c.Input, "deleted", c.Deleted, "expired", c.Expired, "dropped", c.Dropped,
		"rows_out", c.Kept, "deletes", c.Deletes, "routed", c.Routed, "grant", grant, "lease", lease.Size(), "held_peak_bytes", c.HeldPeak,
		"took", took, "rows_per_s", int64(float64(c.Input+c.Deletes)/max(took.Seconds(), 1e-9)))
	return res.Result, nil
}

// leaseFor estimates the plan's memory, sizes the strategy's grant and
// leases grant + host share from the pool.
func (h *Host) leaseFor(ctx context.Context, p *pipeline.Plan, s strategy) (uint64, mempool.MemoryEstimate, *mempool.Lease, error) {
	var est mempool.MemoryEstimate
	man, err := s.manifest(ctx, h)
	if err != nil {
		return 0, est, nil, err
	}
	cols, err := pipeline.ResolveColumns(p.GetSchema(), p.PK, man.FieldSelectors())
	if err != nil {
		return 0, est, nil, fmt.Errorf("strategy %s: %w", s.id(), err)
	}
	var fields []int64
	for _, c := range cols {
		if c.FieldID != abi.FieldIDRowSize {
			fields = append(fields, c.FieldID)
		}
	}
	eo := mempool.EstimateOptions{BatchRows: int64(h.opts.BatchRows), StrategyFields: fields, DownloadLimit: h.opts.DownloadLimit,
		GuestMinBytes: int64(s.minMemory()), BinlogMaxSize: p.Params.BinlogMaxSize}
	if !p.Sorted {
		eo.OpenInputs = 1
	}
	est, err = mempool.Estimate(p.CompactionPlan, eo)
	if err != nil {
		return 0, est, nil, err
	}
	grant := max(uint64(est.Strategy), man.MinMemory, s.minMemory())
	grant = (grant + wasmPage - 1) / wasmPage * wasmPage
	if s.wasm() && grant > h.rt.cfg.MaxGrant {
		return 0, est, nil, fmt.Errorf("the strategy needs a %d-byte grant, above the runtime's MaxGrant of %d bytes", grant, h.rt.cfg.MaxGrant)
	}
	total := int64(grant) + est.Host
	lease, err := h.pool.PreFetch(ctx, fmt.Sprintf("plan %d", p.GetPlanID()), total)
	if err != nil {
		return 0, est, nil, fmt.Errorf("leasing %d bytes (strategy %d + host %d) for plan %d: %w", total, grant, est.Host, p.GetPlanID(), err)
	}
	return grant, est, lease, nil
}

// strategyFor picks the plan's strategy: an explicit option, else the
// registry's active plugin named after the compaction type.
func (h *Host) strategyFor(ctx context.Context, typ string, co compactOptions) (strategy, error) {
	switch {
	case co.native != nil:
		return co.native, nil
	case co.plugin != nil:
		if !co.plugin.Retain() {
			return nil, fmt.Errorf("plugin %s: %w (released)", co.plugin.ID(), ErrClosed)
		}
		return &wasmStrategy{p: co.plugin}, nil
	case h.opts.Plugins != nil:
		p, err := h.opts.Plugins.Acquire(typ)
		if err != nil {
			return nil, err
		}
		return &wasmStrategy{p: p, reg: h.opts.Plugins}, nil
	}
	return nil, fmt.Errorf("no strategy for %s compaction: set Options.Plugins or pass WithPlugin or Native", typ)
}

// strategy is a wasm plugin or a natively linked strategy.
type strategy interface {
	id() PluginID
	wasm() bool
	minMemory() uint64
	manifest(ctx context.Context, h *Host) (abi.Manifest, error)
	start(ctx context.Context, rt *Runtime, grant uint64, deadline time.Time, sink *pipeline.Sink) (guest, error)
	release()
}

// guest is a pipeline.Guest the host closes after the attempt.
type guest interface {
	pipeline.Guest
	close()
}

type wasmStrategy struct {
	p   *Plugin
	reg *Registry // the registry that chose p, told the task's outcome
}

func (w *wasmStrategy) id() PluginID      { return w.p.ID() }
func (w *wasmStrategy) wasm() bool        { return true }
func (w *wasmStrategy) minMemory() uint64 { return w.p.MinMemory() }
func (w *wasmStrategy) release()          { w.p.Release() }

// manifest returns the plugin's manifest, read once per binary from a
// trial instance whose grant is leased from the pool meanwhile.
func (w *wasmStrategy) manifest(ctx context.Context, h *Host) (abi.Manifest, error) {
	h.mu.Lock()
	m, ok := h.manifests[w.p.ID().SHA256]
	h.mu.Unlock()
	if ok {
		return m, nil
	}
	grant := min(max(uint64(manifestProbeGrant), w.p.MinMemory()), h.rt.cfg.MaxGrant)
	if total := uint64(h.pool.Total()); grant > total {
		grant = max(total/wasmPage*wasmPage, w.p.MinMemory())
	}
	lease, err := h.pool.PreFetch(ctx, "manifest of "+w.p.ID().Ref(), int64(grant))
	if err != nil {
		return m, fmt.Errorf("leasing %d bytes to read the manifest of %s: %w", grant, w.p.ID(), err)
	}
	defer h.pool.Return(lease)
	inst, err := h.rt.NewInstance(ctx, w.p, InstanceConfig{Grant: grant, Deadline: time.Now().Add(time.Minute), ManifestOnly: true})
	if err != nil {
		return m, err
	}
	m = inst.Manifest()
	inst.Close()
	h.mu.Lock()
	h.manifests[w.p.ID().SHA256] = m
	h.mu.Unlock()
	return m, nil
}

func (w *wasmStrategy) start(ctx context.Context, rt *Runtime, grant uint64, deadline time.Time, sink *pipeline.Sink) (guest, error) {
	inst, err := rt.NewInstance(ctx, w.p, InstanceConfig{Grant: grant, Deadline: deadline, Emit: sink.Emit, Probe: sink.Probe})
	if err != nil {
		return nil, err
	}
	return instanceGuest{inst}, nil
}

// instanceGuest adapts an Instance to the pipeline.
type instanceGuest struct{ i *Instance }

func (g instanceGuest) Manifest() abi.Manifest { return g.i.Manifest() }
func (g instanceGuest) Begin(ctx context.Context, task []byte) error {
	return g.i.Begin(ctx, task)
}
func (g instanceGuest) Send(ctx context.Context, h abi.BatchHeader, cols []abi.ColumnData) error {
	return g.i.SendBatch(ctx, h, cols)
}
func (g instanceGuest) Finish(ctx context.Context) error { return g.i.Finish(ctx) }
func (g instanceGuest) close()                           { g.i.Close() }
