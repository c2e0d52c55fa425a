package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compacthost/compacthost/abi"
)

// runTask drives one instance through begin, one batch and finish and
// returns the decisions emitted (decoded by the instance's collector).
func runTask(ctx context.Context, rt *Runtime, p *Plugin, cfg InstanceConfig) ([]abi.Run, error) {
	inst, err := rt.NewInstance(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	defer inst.Close()
	if err := inst.Begin(ctx, []byte(`{"plan_id":1}`)); err != nil {
		return nil, err
	}
	if err := inst.Batch(ctx, 64, func(dst []byte) error {
		for i := range dst {
			dst[i] = byte(i)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := inst.Finish(ctx); err != nil {
		return nil, err
	}
	return inst.Decisions().Runs, nil
}

func admit(t testing.TB, rt *Runtime, ref string, wasm []byte) *Plugin {
	t.Helper()
	p, err := rt.Admit(context.Background(), ref, wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Release)
	return p
}

func TestInstanceHappyPath(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{}))
	got, err := runTask(context.Background(), rt, p, InstanceConfig{Grant: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != tmRun {
		t.Fatalf("decisions %+v", got)
	}
}

// TestHostileContained runs each hostile module and checks its typed error,
// while a good task runs alongside and must succeed.
func TestHostileContained(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	good := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{}))
	cases := []struct {
		name string
		opts tmOpts
		cfg  InstanceConfig
		kind error
		msg  string
	}{
		{"infinite loop", tmOpts{batchBody: tmLoopBody}, InstanceConfig{Deadline: time.Now().Add(200 * time.Millisecond)}, ErrDeadline, "deadline"},
		{"memory bomb", tmOpts{batchBody: tmBombBody}, InstanceConfig{}, ErrOutOfMemory, "grant of 1048576 bytes exhausted"},
		{"out-of-range emit", tmOpts{batchBody: tmBadPtrBody}, InstanceConfig{}, ErrABIMisuse, "emit: buffer [4294967232, +4096) is outside guest memory"},
		{"out-of-range alloc", tmOpts{allocBody: tmBadAllocBody}, InstanceConfig{}, ErrABIMisuse, "outside guest memory"},
		{"alloc refuses", tmOpts{allocBody: tmZeroAllocBody}, InstanceConfig{}, ErrOutOfMemory, "could not allocate"},
		{"trap", tmOpts{batchBody: tmTrapBody}, InstanceConfig{}, ErrTrap, "unreachable"},
		{"guest error status", tmOpts{batchBody: tmFailBody}, InstanceConfig{}, ErrGuestFailed, "ERROR: boom"},
		{"malformed decisions", tmOpts{finishBody: tmEmitShortBody}, InstanceConfig{}, ErrABIMisuse, "emit runs (4 bytes): abi: runs buffer of 4 bytes is not a multiple of the 16-byte record"},
		{"wrong manifest abi", tmOpts{abi: 2}, InstanceConfig{}, ErrRefused, "manifest declares abi 2"},
		{"wrong manifest name", tmOpts{name: "other"}, InstanceConfig{}, ErrRefused, `manifest name "other"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.version = "9"
			p := admit(t, rt, "mix@9", tmModule(c.opts))
			var wg sync.WaitGroup
			wg.Add(1)
			var goodErr error
			go func() {
				defer wg.Done()
				_, goodErr = runTask(context.Background(), rt, good, InstanceConfig{Grant: 1 << 20})
			}()
			if c.cfg.Grant == 0 {
				c.cfg.Grant = 1 << 20
			}
			_, err := runTask(context.Background(), rt, p, c.cfg)
			wg.Wait()
			if goodErr != nil {
				t.Fatalf("good task failed alongside: %v", goodErr)
			}
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "mix@9 (sha256 ") {
				t.Fatalf("got %v; want kind %v with %q", err, c.kind, c.msg)
			}
		})
	}
}

func TestTrapCarriesStack(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{batchBody: tmTrapBody}))
	_, err := runTask(context.Background(), rt, p, InstanceConfig{Grant: 1 << 20})
	var te *TaskError
	if !errors.As(err, &te) || te.Op != "compact_v1_batch" || !strings.Contains(te.Stack, "wasm stack trace") {
		t.Fatalf("%#v", err)
	}
}

func TestInstanceAfterFailureIsClosed(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{batchBody: tmTrapBody}))
	inst, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	first := inst.Batch(context.Background(), 8, func([]byte) error { return nil })
	if !errors.Is(first, ErrTrap) {
		t.Fatal(first)
	}
	if again := inst.Finish(context.Background()); again != first || inst.Err() != first {
		t.Fatalf("second call: %v", again)
	}
	inst.Close() // idempotent
}

func TestGrantBelowMinMemory(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{minPages: 20}))
	_, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 1 << 20})
	var ae *AdmissionError
	if !errors.As(err, &ae) || ae.Rule != "min-memory" || !strings.Contains(err.Error(), "exceeds the grant of 1048576") {
		t.Fatalf("%v", err)
	}
}

func TestReleasedPluginCannotInstantiate(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p, err := rt.Admit(context.Background(), "mix@1.0.0", tmModule(tmOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	p.Release() // the instance still holds a reference
	if err := inst.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	inst.Close()
	if _, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 1 << 20}); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
}

func TestConcurrentInstances(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{}))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if got, err := runTask(context.Background(), rt, p, InstanceConfig{Grant: 1 << 20}); err != nil || len(got) != 1 {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTrustPinnedRunsUninterruptible(t *testing.T) {
	wasm := tmModule(tmOpts{})
	sum := sha256.Sum256(wasm)
	rt := newTestRuntime(t, Config{TrustPinned: true, Pins: map[string]string{"mix@1.0.0": hex.EncodeToString(sum[:])}})
	pinned := admit(t, rt, "mix@1.0.0", wasm)
	other := admit(t, rt, "mix@1.0.1", tmModule(tmOpts{version: "1.0.1"}))
	if pinned.Interruptible() || !other.Interruptible() {
		t.Fatalf("pinned interruptible=%v, unpinned interruptible=%v", pinned.Interruptible(), other.Interruptible())
	}
	if _, err := runTask(context.Background(), rt, pinned, InstanceConfig{Grant: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	// Without termination checks the deadline is enforced between calls.
	inst, err := rt.NewInstance(context.Background(), pinned, InstanceConfig{Grant: 1 << 20, Deadline: time.Now().Add(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if err := inst.Finish(context.Background()); !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "before the call") {
		t.Fatalf("%v", err)
	}
}

// TestCloseDuringCall: Close from another goroutine while the guest loops
// must not unmap its memory under running code; the close happens when the
// call ends at the deadline.
func TestCloseDuringCall(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{batchBody: tmLoopBody}))
	inst, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 1 << 20, Deadline: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- inst.Batch(context.Background(), 8, func([]byte) error { close(started); return nil })
	}()
	<-started
	inst.Close()
	if err := <-done; !errors.Is(err, ErrDeadline) {
		t.Fatalf("looping call ended with %v", err)
	}
	if err := inst.Finish(context.Background()); err == nil {
		t.Fatal("closed instance still usable")
	}
}
