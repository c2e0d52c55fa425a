package host

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// stallStore blocks every read until the caller's context ends, as an
// unresponsive object store would.
type stallStore struct{ objstore.Store }

func (s stallStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s stallStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCompactDeadlineEveryStage: whichever stage notices the deadline (a
// stalled read, a wait for memory, the strategy), the error is ErrDeadline,
// says what ended the task (its own timeout or the caller's deadline) and
// names the stage that noticed; a deadline in the future is never "passed".
func TestCompactDeadlineEveryStage(t *testing.T) {
	ctx := context.Background()
	base := objstoretest.Local(t)
	plan := generate(t, base, smallGen(5)).MixPlan
	before := snapshot(t, base)

	check := func(err error, h *Host, stage, reason string) {
		t.Helper()
		ce := expectCleanFailure(t, h, base, before, err, ErrDeadline, stage)
		if !strings.Contains(err.Error(), reason+", noticed in stage "+stage+": ") {
			t.Fatalf("error %q: want %q and the stage %s", err, reason, stage)
		}
		if ce.Plugin.Name != "" && stage != "strategy" && strings.Contains(err.Error(), "plugin "+ce.Plugin.Ref()+": ") {
			t.Fatalf("error %q blames the plugin for a %s-stage deadline", err, stage)
		}
	}

	stalled := newTestHost(t, stallStore{base}, 0, func(o *Options) { o.TaskTimeout = 300 * time.Millisecond })
	_, err := stalled.Compact(ctx, plan, Native(mixstrategy.New()))
	check(err, stalled, "read", "task timeout 300ms exceeded")

	h := newTestHost(t, base, 256<<20, func(o *Options) { o.TaskTimeout = 300 * time.Millisecond })
	hold, err := h.Pool().PreFetch(ctx, "someone else", h.Pool().Total())
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Compact(ctx, plan, Native(mixstrategy.New()))
	h.Pool().Return(hold)
	check(err, h, "memory", "task timeout 300ms exceeded")

	// The caller's deadline ends the task before the host's own timeout.
	h.opts.TaskTimeout = time.Hour
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	hold, _ = h.Pool().PreFetch(ctx, "someone else", h.Pool().Total())
	_, err = h.Compact(cctx, plan, Native(mixstrategy.New()))
	h.Pool().Return(hold)
	check(err, h, "memory", "ms into the task")

	// A probe instance (1-minute deadline) stopped by the caller's earlier
	// deadline reports the deadline that passed, not its own future one.
	rt := pipelineRuntime(t)
	p := admit(t, rt, "mix@1.0.0", mixWasm(t))
	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	want, _ := dctx.Deadline()
	_, err = rt.NewInstance(dctx, p, InstanceConfig{Grant: 64 << 20, Deadline: time.Now().Add(time.Minute)})
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "task deadline "+want.Format(time.RFC3339Nano)+" passed") {
		t.Fatalf("probe stopped by the caller's deadline: %v; want its deadline %s named", err, want.Format(time.RFC3339Nano))
	}
}
