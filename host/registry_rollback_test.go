package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero/sys"

	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestRegistryRollsBackFailingVersion: a new mix version that traps on
// every batch is rolled back after RollbackFailures tasks by the registry a
// Host reports to: the next task runs on the previous version and the bad
// one is listed as refused with the reason.
func TestRegistryRollsBackFailingVersion(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(11))
	dir := t.TempDir()
	writePlugin(t, dir, "mix@1.0.0.wasm", mixWasm(t))
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0", batchBody: tmTrapBody}))
	var logs strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{RollbackFailures: 3, RollbackWindow: 5, Logger: log})
	defer reg.Close()
	mustPoll(t, reg)
	h := newTestHost(t, store, 0, func(o *Options) { o.Plugins = reg })

	var ran []PluginID
	compact := func() error {
		_, err := h.Compact(ctx, col.MixPlan, OnStrategy(func(id PluginID) { ran = append(ran, id) }))
		return err
	}
	for i := 1; i <= 3; i++ {
		err := compact()
		var ce *CompactError
		if !errors.As(err, &ce) || !errors.Is(err, ErrTrap) || ce.Plugin.Version != "2.0.0" {
			t.Fatalf("task %d: %v, want a trap of mix@2.0.0", i, err)
		}
		if i < 3 {
			if v := activeVersion(t, reg, "mix"); v != "2.0.0" {
				t.Fatalf("after %d failures active %s", i, v)
			}
		}
	}
	s, _ := statusOf(reg, "mix@2.0.0.wasm")
	var rb *RollbackError
	if s.Active || s.State() != "refused" || !errors.As(s.Err, &rb) || !errors.Is(s.Err, ErrRolledBack) ||
		rb.Failures != 3 || rb.Tasks != 3 || !strings.Contains(rb.Last, "wasm trap") ||
		!strings.Contains(s.Err.Error(), "rolled back after 3 consecutive strategy failures in its first 3 tasks") {
		t.Fatalf("bad version after rollback: %+v", s)
	}
	if err := compact(); err != nil {
		t.Fatalf("task after rollback: %v", err)
	}
	if len(ran) != 4 || ran[0].Version != "2.0.0" || ran[3].Version != "1.0.0" || len(ran[3].SHA256) != 64 {
		t.Fatalf("strategies that ran: %v", ran)
	}
	if reg.Rollbacks() != 1 {
		t.Fatalf("rollbacks %d", reg.Rollbacks())
	}
	if !strings.Contains(logs.String(), "[WARN]  registry: plugin rolled back: plugin=\"mix@2.0.0") || !strings.Contains(logs.String(), "serving=\"mix@1.0.0") {
		t.Fatalf("rollback not logged at WARN:\n%s", logs.String())
	}
	// The same bytes stay refused when the file is touched.
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0", batchBody: tmTrapBody}))
	mustPoll(t, reg)
	if v := activeVersion(t, reg, "mix"); v != "1.0.0" {
		t.Fatalf("after touching the rolled-back file, active %s", v)
	}
}

// TestRegistryRollbackRules: only strategy faults count, a success breaks
// the streak, only the first RollbackWindow tasks are watched, and a
// version with nothing to fall back to keeps serving.
func TestRegistryRollbackRules(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{version: "1.0.0"}))
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0"}))
	writePlugin(t, dir, "l0@1.wasm", tmModule(tmOpts{name: "l0", version: "1"}))
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20, RollbackFailures: 3, RollbackWindow: 6})
	defer reg.Close()
	mustPoll(t, reg)
	idOf := func(file string) PluginID { s, _ := statusOf(reg, file); return s.ID }
	v2, l0 := idOf("mix@2.0.0.wasm"), idOf("l0@1.wasm")
	fault := func(id PluginID) error {
		return &CompactError{PlanID: 1, Plugin: id, Stage: "strategy", Err: &TaskError{Plugin: id, Op: "compact_v1_batch", Kind: ErrTrap}}
	}
	storage := &CompactError{PlanID: 1, Plugin: v2, Stage: "read", Err: errors.New("connection refused")}
	before := &CompactError{PlanID: 1, Plugin: v2, Stage: "strategy", Err: &TaskError{Kind: ErrDeadline, Err: context.DeadlineExceeded}}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		reg.Report(v2, storage) // not the plugin's fault: ignored, not even counted
		reg.Report(v2, before)
		reg.report(cancelled, v2, fault(v2)) // the caller cancelled the task
	}
	for _, err := range []error{fault(v2), fault(v2), nil, fault(v2), fault(v2)} {
		reg.Report(v2, err)
	}
	if v := activeVersion(t, reg, "mix"); v != "2.0.0" {
		t.Fatalf("a success broke the streak, yet active %s", v)
	}
	reg.Report(v2, fault(v2)) // task 6, third in a row: rolled back
	if v := activeVersion(t, reg, "mix"); v != "1.0.0" {
		t.Fatalf("after 3 consecutive faults in 6 tasks, active %s", v)
	}
	v1 := idOf("mix@1.0.0.wasm")
	for range 3 {
		reg.Report(v1, nil)
	}
	for range 5 {
		reg.Report(v1, fault(v1)) // 3 successes + 3 faults fill the window; the rest are ignored
	}
	if s, _ := statusOf(reg, "mix@1.0.0.wasm"); !s.Active || s.Err != nil {
		t.Fatalf("mix@1.0.0 has no version to fall back to and must keep serving: %+v", s)
	}
	for range 4 {
		reg.Report(l0, fault(l0))
	}
	if s, _ := statusOf(reg, "l0@1.wasm"); !s.Active {
		t.Fatalf("the only l0 version was dropped: %+v", s)
	}
	if reg.Rollbacks() != 1 {
		t.Fatalf("rollbacks %d", reg.Rollbacks())
	}
}

func TestStrategyFault(t *testing.T) {
	te := func(kind error, cause error) error {
		return &CompactError{Stage: "strategy", Err: &TaskError{Kind: kind, Err: cause}}
	}
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{te(ErrTrap, nil), true},
		{te(ErrOutOfMemory, nil), true},
		{te(ErrGuestFailed, nil), true},
		{te(ErrPanic, nil), true},
		{te(ErrABIMisuse, nil), true},
		{te(ErrExit, nil), true},
		{te(ErrDeadline, sys.NewExitError(sys.ExitCodeDeadlineExceeded)), true},
		{te(ErrDeadline, sys.NewExitError(sys.ExitCodeContextCanceled)), false},
		{te(ErrDeadline, context.DeadlineExceeded), false},
		{te(ErrClosed, nil), false},
		{&CompactError{Stage: "strategy", Err: fmt.Errorf("counters: %w", ErrABIMisuse)}, true},
		{&CompactError{Stage: "strategy", Err: ErrNoPlugin}, false},
		{&CompactError{Stage: "write", Err: &TaskError{Kind: ErrTrap}}, false},
		{&CompactError{Stage: "validate", Err: ErrInvalidPlan}, false},
		{&TaskError{Kind: ErrPanic}, true},
		{errors.New("connection refused"), false},
	}
	for i, c := range cases {
		if got := StrategyFault(c.err); got != c.want {
			t.Errorf("case %d: StrategyFault(%v) = %v, want %v", i, c.err, got, c.want)
		}
	}
}
