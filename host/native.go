package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/host/internal/pipeline"
)

// Native runs the plan through s linked into this process, driven by the
// SDK's native Driver with the identical bytes a wasm instance receives
// (task JSON, encoded batches) and the same decision checks. There is no
// sandbox: no memory cap, and a deadline is checked only between calls. It
// exists to measure the sandbox's cost (the same plan through wasm and
// natively) and for trusted strategies.
func Native(s sdk.Strategy) CompactOption {
	return func(o *compactOptions) { o.native, o.plugin = &nativeStrategy{s: s}, nil }
}

type nativeStrategy struct{ s sdk.Strategy }

func (n *nativeStrategy) id() PluginID {
	m := n.s.Manifest()
	return PluginID{Name: m.Name, Version: m.Version}
}
func (n *nativeStrategy) wasm() bool        { return false }
func (n *nativeStrategy) minMemory() uint64 { return 0 }
func (n *nativeStrategy) release()          {}
func (n *nativeStrategy) manifest(context.Context, *Host) (abi.Manifest, error) {
	m := n.s.Manifest()
	if m.ABI == 0 {
		m.ABI = abi.Version
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("native strategy: %w", err)
	}
	return m, nil
}

func (n *nativeStrategy) start(_ context.Context, _ *Runtime, _ uint64, deadline time.Time, sink *pipeline.Sink) (guest, error) {
	g := &nativeGuest{sink: sink, pid: n.id(), deadline: deadline}
	d, err := sdk.NewDriver(n.s, g)
	if err != nil {
		return nil, fmt.Errorf("native strategy %s: %w", g.pid, err)
	}
	g.d = d
	return g, nil
}

// nativeGuest is the sdk.Host of a native Driver and the pipeline's Guest.
type nativeGuest struct {
	d        *sdk.Driver
	sink     *pipeline.Sink
	pid      PluginID
	deadline time.Time
	misuse   error // the sink's refusal during the current call
	buf      []byte
}

// Emit implements sdk.Host.
func (g *nativeGuest) Emit(kind abi.EmitKind, buf []byte) abi.Status {
	if err := g.sink.Emit(kind, buf); err != nil {
		if g.misuse == nil {
			g.misuse = fmt.Errorf("emit %s (%d bytes): %w", kind, len(buf), err)
		}
		return abi.StatusBadInput
	}
	return abi.StatusOK
}

// Probe implements sdk.Host.
func (g *nativeGuest) Probe(pairs, hits []byte) abi.Status {
	if err := g.sink.Probe(pairs, hits); err != nil {
		if g.misuse == nil {
			g.misuse = fmt.Errorf("probe: %w", err)
		}
		return abi.StatusBadInput
	}
	return abi.StatusOK
}

func (g *nativeGuest) Manifest() abi.Manifest { return g.d.Manifest() }

func (g *nativeGuest) Begin(ctx context.Context, task []byte) error {
	return g.call(ctx, abi.ExportBegin, func() error { return g.d.Begin(task) })
}

func (g *nativeGuest) Send(ctx context.Context, h abi.BatchHeader, cols []abi.ColumnData) error {
	n, err := abi.EncodedSize(h.Rows, cols)
	if err != nil {
		return fmt.Errorf("host: native strategy %s: %w", g.pid, err)
	}
	if cap(g.buf) < n {
		g.buf = make([]byte, n)
	}
	buf := g.buf[:n]
	if _, err := abi.EncodeInto(buf, h, cols); err != nil {
		return fmt.Errorf("host: native strategy %s: %w", g.pid, err)
	}
	if h.Kind == abi.BatchDeletes {
		return g.call(ctx, abi.ExportDeletes, func() error { return g.d.Deletes(buf) })
	}
	return g.call(ctx, abi.ExportBatch, func() error { return g.d.Batch(buf) })
}

func (g *nativeGuest) Finish(ctx context.Context) error {
	return g.call(ctx, abi.ExportFinish, g.d.Finish)
}

func (g *nativeGuest) close() {}

// call runs one driver call and maps its outcome to a TaskError like the
// wasm instance does.
func (g *nativeGuest) call(ctx context.Context, op string, f func() error) error {
	if ctx.Err() != nil || !time.Now().Before(g.deadline) {
		return &TaskError{Plugin: g.pid, Op: op, Kind: ErrDeadline, Message: deadlineMessage(ctx, g.deadline) + " before the call", Err: ctx.Err()}
	}
	g.misuse = nil
	err := f()
	if g.misuse != nil {
		return &TaskError{Plugin: g.pid, Op: op, Kind: ErrABIMisuse, Message: g.misuse.Error(), Err: g.misuse}
	}
	if err == nil {
		return nil
	}
	kind := ErrGuestFailed
	var ae *abi.Error
	if errors.As(err, &ae) && ae.Status == abi.StatusOutOfMemory {
		kind = ErrOutOfMemory
	}
	msg := err.Error()
	if ae != nil {
		msg = ae.Status.String() + ": " + ae.Message
	}
	return &TaskError{Plugin: g.pid, Op: op, Kind: kind, Message: msg, Err: err}
}
