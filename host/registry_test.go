package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compacthost/compacthost/storage/objstore"
)

func writePlugin(t *testing.T, dir, file string, wasm []byte) {
	t.Helper()
	// Write then rename so a poll never sees a half-written file.
	tmp := filepath.Join(dir, "."+file+".tmp")
	if err := os.WriteFile(tmp, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
		t.Fatal(err)
	}
}

func mustPoll(t *testing.T, reg *Registry) {
	t.Helper()
	if err := reg.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func activeVersion(t *testing.T, reg *Registry, name string) string {
	t.Helper()
	p, err := reg.Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	return p.ID().Version
}

func statusOf(reg *Registry, file string) (PluginStatus, bool) {
	for _, s := range reg.Plugins() {
		if s.File == file {
			return s, true
		}
	}
	return PluginStatus{}, false
}

func TestRegistryHotReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20})
	defer reg.Close()

	if _, err := reg.Acquire("mix"); !errors.Is(err, ErrNoPlugin) {
		t.Fatalf("empty registry: %v", err)
	}
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{version: "1.0.0"}))
	mustPoll(t, reg)

	// A v1 task starts and is still running when v2 arrives.
	p1, err := reg.Acquire("mix")
	if err != nil {
		t.Fatal(err)
	}
	running, err := rt.NewInstance(ctx, p1, InstanceConfig{Grant: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := running.Begin(ctx, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0"}))
	mustPoll(t, reg)
	if v := activeVersion(t, reg, "mix"); v != "2.0.0" {
		t.Fatalf("after v2 dropped in, active %s", v)
	}
	p2, _ := reg.Acquire("mix")
	if _, err := runTask(ctx, rt, p2, InstanceConfig{Grant: 1 << 20}); err != nil {
		t.Fatalf("task on v2: %v", err)
	}
	p2.Release()

	// The v1 task completes on v1.
	if err := running.Batch(ctx, 16, func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := running.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if running.Plugin().ID().Version != "1.0.0" || len(running.Decisions().Runs) != 1 {
		t.Fatalf("running task ended on %s with %v", running.Plugin().ID(), running.Decisions().Runs)
	}
	running.Close()
	p1.Release()

	// A broken v3 is refused; v2 keeps serving.
	writePlugin(t, dir, "mix@3.0.0.wasm", tmModule(tmOpts{version: "3.0.0", extraImport: [2]string{"env", "open"}}))
	// A v4 that passes static admission but declares another version in its
	// manifest is refused by the trial instance.
	writePlugin(t, dir, "mix@4.0.0.wasm", tmModule(tmOpts{version: "4.0.1"}))
	mustPoll(t, reg)
	if v := activeVersion(t, reg, "mix"); v != "2.0.0" {
		t.Fatalf("after broken v3/v4, active %s", v)
	}
	s3, _ := statusOf(reg, "mix@3.0.0.wasm")
	var ae *AdmissionError
	if s3.Active || !errors.As(s3.Err, &ae) || ae.Rule != "import-allowlist" || s3.ID.SHA256 == "" {
		t.Fatalf("v3 status %+v", s3)
	}
	s4, _ := statusOf(reg, "mix@4.0.0.wasm")
	if !errors.As(s4.Err, &ae) || ae.Rule != "manifest" || !strings.Contains(s4.Err.Error(), `manifest version "4.0.1"`) {
		t.Fatalf("v4 status %+v", s4)
	}

	// Removing v2 rolls back to v1.
	if err := os.Remove(filepath.Join(dir, "mix@2.0.0.wasm")); err != nil {
		t.Fatal(err)
	}
	mustPoll(t, reg)
	if v := activeVersion(t, reg, "mix"); v != "1.0.0" {
		t.Fatalf("after removing v2, active %s", v)
	}
	if _, ok := statusOf(reg, "mix@2.0.0.wasm"); ok {
		t.Fatal("removed file still listed")
	}

	// Overwriting v1 with a refused binary keeps the old v1 bytes serving.
	good1, _ := statusOf(reg, "mix@1.0.0.wasm")
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{version: "1.0.0", skipExport: "compact_v1_finish"}))
	mustPoll(t, reg)
	s1, _ := statusOf(reg, "mix@1.0.0.wasm")
	if !s1.Active || s1.ID.SHA256 != good1.ID.SHA256 || s1.Err == nil || !strings.Contains(s1.Err.Error(), "missing export compact_v1_finish") {
		t.Fatalf("refused overwrite: %+v", s1)
	}
	p, _ := reg.Acquire("mix")
	if _, err := runTask(ctx, rt, p, InstanceConfig{Grant: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	p.Release()
}

func TestRegistryPinAndNames(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{Pins: map[string]string{"mix@1.0.0": strings.Repeat("0", 64)}})
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20})
	defer reg.Close()
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{}))
	writePlugin(t, dir, "noversion.wasm", tmModule(tmOpts{}))
	writePlugin(t, dir, "README.txt", []byte("not a plugin"))
	mustPoll(t, reg)
	st := reg.Plugins()
	if len(st) != 2 {
		t.Fatalf("statuses %+v", st)
	}
	if st[0].File != "mix@1.0.0.wasm" || !errors.Is(st[0].Err, ErrRefused) || !strings.Contains(st[0].Err.Error(), "sha256-pin") {
		t.Fatalf("pinned: %+v", st[0])
	}
	if st[1].File != "noversion.wasm" || st[1].Err == nil || !strings.Contains(st[1].Err.Error(), "not name@version") {
		t.Fatalf("bad name: %+v", st[1])
	}
}

func TestRegistryWatchStoreSource(t *testing.T) {
	dir := t.TempDir()
	store, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rt := newTestRuntime(t, Config{})
	reg := NewRegistry(rt, StoreSource(store, "plugins"), RegistryConfig{Interval: 10 * time.Millisecond, ProbeGrant: 1 << 20})
	defer reg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Watch(ctx) }()
	wasm := tmModule(tmOpts{version: "1.2.0"})
	if err := store.Put(ctx, "plugins/mix@1.2.0.wasm", bytes.NewReader(wasm), int64(len(wasm))); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "plugins/old/mix@9.0.0.wasm", bytes.NewReader(wasm), int64(len(wasm))); err != nil {
		t.Fatal(err)
	}
	var p *Plugin
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if p, err = reg.Acquire("mix"); err == nil {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v", err)
	}
	if p == nil {
		t.Fatal("plugin never became active")
	}
	defer p.Release()
	if p.ID().Version != "1.2.0" {
		t.Fatalf("active %s (nested prefix must be ignored)", p.ID())
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.2.0", "1.10.0", -1}, {"v2", "1.9", 1},
		{"1.0", "1.0.1", -1}, {"1.0.0-rc1", "1.0.0-rc2", -1}, {"10", "9", 1},
	}
	for _, c := range cases {
		if got := compareVersions(c.a, c.b); (got > 0) != (c.want > 0) || (got < 0) != (c.want < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", c.a, c.b, got, c.want)
		}
	}
}

// flakySource fails the first Read.
type flakySource struct {
	Source
	failed bool
}

func (f *flakySource) Read(ctx context.Context, name string, limit int64) ([]byte, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("connection reset")
	}
	return f.Source.Read(ctx, name, limit)
}

func TestRegistryRetriesReadErrors(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	reg := NewRegistry(rt, &flakySource{Source: DirSource(dir)}, RegistryConfig{ProbeGrant: 1 << 20})
	defer reg.Close()
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{}))
	mustPoll(t, reg)
	if s, _ := statusOf(reg, "mix@1.0.0.wasm"); s.Err == nil || !strings.Contains(s.Err.Error(), "connection reset") {
		t.Fatalf("first poll: %+v", s)
	}
	mustPoll(t, reg)
	if v := activeVersion(t, reg, "mix"); v != "1.0.0" {
		t.Fatalf("after retry, active %s", v)
	}
}

// A binary that needs more memory than any task of this registry can lease
// is refused at admission, not by every task that picks it.
func TestRegistryRefusesUnrunnableMemory(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{})
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20, MaxMemory: 4 << 20})
	defer reg.Close()
	writePlugin(t, dir, "mix@1.0.0.wasm", tmModule(tmOpts{}))
	writePlugin(t, dir, "mix@2.0.0.wasm", tmModule(tmOpts{version: "2.0.0", minPages: 100})) // 6.25 MiB
	mustPoll(t, reg)
	st, _ := statusOf(reg, "mix@2.0.0.wasm")
	if !errors.Is(st.Err, ErrRefused) || !strings.Contains(st.Err.Error(), "above the memory pool of 4194304 bytes") {
		t.Fatalf("mix@2.0.0: %+v, want a min-memory refusal", st)
	}
	if v := activeVersion(t, reg, "mix"); v != "1.0.0" {
		t.Fatalf("active mix %s, want 1.0.0", v)
	}
}
