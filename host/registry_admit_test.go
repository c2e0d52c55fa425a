package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

// TestRegistryStuckInitializeBlocksNoOne: a version whose _initialize never
// returns is listed as loading while a newer version dropped in after it is
// admitted and serves; the stuck one is refused at its admission deadline.
func TestRegistryStuckInitializeBlocksNoOne(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	const admitTimeout = 4 * time.Second
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{Interval: 20 * time.Millisecond, ProbeGrant: 1 << 20, AdmitTimeout: admitTimeout})
	defer reg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() { watching <- reg.Watch(ctx) }()
	defer func() {
		cancel()
		<-watching
	}()

	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{version: "1.0.0"}))
	waitFor(t, "mix@1.0.0 active", func() bool { s, _ := statusOf(reg, "mix@1.0.0.wasm"); return s.Active })

	stuckAt := time.Now()
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0", initBody: wt.Loop(nil)}))
	waitFor(t, "mix@2.0.0 loading", func() bool { s, _ := statusOf(reg, "mix@2.0.0.wasm"); return s.Loading })
	s, _ := statusOf(reg, "mix@2.0.0.wasm")
	if s.Active || s.Err != nil || s.State() != "loading" || s.ID.Name != "mix" || s.ID.Version != "2.0.0" {
		t.Fatalf("stuck version while loading: %+v", s)
	}

	writePlugin(t, dir, "mix@3.0.0.wasm", tmModule(tmOpts{version: "3.0.0"}))
	waitFor(t, "mix@3.0.0 active", func() bool { s, _ := statusOf(reg, "mix@3.0.0.wasm"); return s.Active })
	if took := time.Since(stuckAt); took >= admitTimeout {
		t.Fatalf("mix@3.0.0 became active %v after the stuck mix@2.0.0 appeared: it waited for its deadline", took)
	}
	if s, _ := statusOf(reg, "mix@2.0.0.wasm"); !s.Loading {
		t.Fatalf("mix@2.0.0 no longer loading before its deadline: %+v", s)
	}
	if v := activeVersion(t, reg, "mix"); v != "3.0.0" {
		t.Fatalf("active %s", v)
	}

	waitFor(t, "mix@2.0.0 refused", func() bool { s, _ := statusOf(reg, "mix@2.0.0.wasm"); return s.Err != nil })
	s, _ = statusOf(reg, "mix@2.0.0.wasm")
	var ae *AdmissionError
	if s.Loading || s.Active || s.State() != "refused" || !errors.As(s.Err, &ae) || ae.Rule != RuleAdmitTimeout ||
		!strings.Contains(s.Err.Error(), "did not finish within 4s") || len(s.ID.SHA256) != 64 {
		t.Fatalf("stuck version after its deadline: %+v", s)
	}
	// A refusal is a verdict: later polls do not admit the same bytes again.
	time.Sleep(100 * time.Millisecond)
	if s, _ := statusOf(reg, "mix@2.0.0.wasm"); s.Loading {
		t.Fatalf("refused version is being admitted again: %+v", s)
	}
}

// TestRegistryRemovedWhileLoading: removing a file whose admission is in
// flight drops it from the listing and its admission decides nothing.
func TestRegistryRemovedWhileLoading(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20, AdmitTimeout: time.Minute})
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0", initBody: wt.Loop(nil)}))
	ctx := context.Background()
	if _, err := reg.scan(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "loading", func() bool { s, _ := statusOf(reg, "mix@2.0.0.wasm"); return s.Loading })
	if err := os.Remove(filepath.Join(dir, "mix@2.0.0.wasm")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustPoll(t, reg)
	if st := reg.Plugins(); len(st) != 0 {
		t.Fatalf("after removal: %+v", st)
	}
	reg.Close() // waits for the cancelled admission
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the cancelled admission ran for %v", took)
	}
}

// waitFor polls cond until it holds; the bound only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}
