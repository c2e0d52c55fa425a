//go:build !wasip1

// Package sdktest is a testing aid for strategy authors: it builds a
// strategy's main package for wasip1 and runs tasks through it under
// wazero, calling the compact_v1 exports the way the host does (alloc,
// copy the bytes into guest memory, call begin / deletes / batch / finish).
//
// The compact_v1 host module it provides is minimal: it collects the
// emitted decisions, the log lines and the last fail message, and answers
// probes with a callback. It enforces no memory grant beyond an optional
// cap on linear memory; the real host lives in package host.
//
// A typical test checks that the wasm build decides what the natively
// linked strategy decides:
//
//	wasm := sdktest.Build(t, "example.com/mystrategy/cmd/wasm")
//	g := sdktest.New(t, wasm, sdktest.Config{MemoryLimitPages: 1024})
//	g.CheckManifest(mystrategy.New().Manifest())
//	if st := g.Run(task, deletes, batches); st != abi.StatusOK {
//		t.Fatalf("%s: %s", st, g.Failed)
//	}
//	// compare g.Decisions with what sdk.RunTask returns natively
//
// Build needs a go toolchain on PATH. Without one the test is skipped,
// except when CI=true, where it fails.
package sdktest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/compacthost/compacthost/abi"
)

type built struct {
	once sync.Once
	wasm []byte
	skip string
	err  error
}

var (
	mu     sync.Mutex
	builds = map[string]*built{}
	// cache shares compiled code between the runtimes of one test binary.
	cache = wazero.NewCompilationCache()
)

// Build compiles the main package pkg (an import path, or a path relative
// to the test's package directory) with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared, once per test binary, and returns the module. It
// skips the test when no go toolchain is on PATH, or fails it when the
// environment has CI=true.
func Build(t testing.TB, pkg string) []byte {
	t.Helper()
	mu.Lock()
	b := builds[pkg]
	if b == nil {
		b = new(built)
		builds[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.wasm, b.skip, b.err = build(pkg) })
	if b.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(b.skip + " (CI=true requires it)")
		}
		t.Skip(b.skip)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

// build runs go build for pkg; skip is set when there is no toolchain.
func build(pkg string) (wasm []byte, skip string, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, "no go toolchain on PATH, cannot build " + pkg + " for wasip1: " + err.Error(), nil
	}
	dir, err := os.MkdirTemp("", "sdktest")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "strategy.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, "", &buildError{pkg: pkg, err: err, out: string(msg)}
	}
	wasm, err = os.ReadFile(out)
	return wasm, "", err
}

type buildError struct {
	pkg string
	err error
	out string
}

func (e *buildError) Error() string {
	return "building " + e.pkg + " for wasip1: " + e.err.Error() + "\n" + e.out
}

// Config is the sandbox a Guest runs in.
type Config struct {
	// MemoryLimitPages caps linear memory at this many 64 KiB pages, as
	// the host caps it at a task's memory_grant. 0 leaves it uncapped.
	MemoryLimitPages uint32
	// GoMemLimit is the GOMEMLIMIT environment variable the guest starts
	// with (the SDK resets the limit from each task's grant in begin).
	// Empty means "200MiB".
	GoMemLimit string
}

// Guest is one instance of a strategy module in its own wazero runtime,
// which closes when the test ends. It is not safe for concurrent use.
type Guest struct {
	t   testing.TB
	ctx context.Context
	mod api.Module
	// Decisions holds every decision emitted since the last Run.
	Decisions abi.Decisions
	// Logs holds the guest's log lines since the last Run.
	Logs []string
	// Failed is the last message passed to fail.
	Failed string
	// Probe answers probes: set bit i of hits when pair i may hit. Nil
	// answers UNSUPPORTED.
	Probe func(pairs []abi.L0Pair, hits []byte)
	// Discard drops emitted decisions instead of collecting them (for
	// benchmarks).
	Discard bool
	// Manifest is what the module declared.
	Manifest abi.Manifest
	// MinPages is the initial size of linear memory the module declares,
	// in 64 KiB pages (its static data and the runtime's first heap).
	MinPages uint32
}

// New instantiates wasm, runs its _initialize and reads its manifest, as
// the host does when it loads a strategy. Any failure fails the test.
func New(t testing.TB, wasm []byte, cfg Config) *Guest {
	t.Helper()
	ctx := context.Background()
	rc := wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache)
	if cfg.MemoryLimitPages > 0 {
		rc = rc.WithMemoryLimitPages(cfg.MemoryLimitPages)
	}
	if cfg.GoMemLimit == "" {
		cfg.GoMemLimit = "200MiB"
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	g := &Guest{t: t, ctx: ctx}
	if _, err := g.hostModule(rt).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if mem, ok := cm.ExportedMemories()["memory"]; ok {
		g.MinPages = mem.Min()
	}
	g.mod, err = rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().
		WithStartFunctions(abi.ExportInitialize).WithEnv("GOMEMLIMIT", cfg.GoMemLimit))
	if err != nil {
		t.Fatal(err)
	}
	packed := g.Call(abi.ExportManifest)
	mj, ok := g.mod.Memory().Read(uint32(packed>>32), uint32(packed))
	if !ok {
		t.Fatalf("manifest at %#x is outside guest memory", packed)
	}
	if g.Manifest, err = abi.ParseManifest(mj); err != nil {
		t.Fatal(err)
	}
	return g
}

// CheckManifest fails the test unless the module declared want, usually
// the Manifest of the natively linked strategy.
func (g *Guest) CheckManifest(want abi.Manifest) {
	g.t.Helper()
	if !reflect.DeepEqual(g.Manifest, want) {
		g.t.Fatalf("wasm manifest %+v, native %+v", g.Manifest, want)
	}
}

// hostModule defines the minimal compact_v1 module that feeds g.
func (g *Guest) hostModule(rt wazero.Runtime) wazero.HostModuleBuilder {
	i32 := api.ValueTypeI32
	params := []api.ValueType{i32, i32, i32}
	read := func(m api.Module, ptr, n uint64) []byte {
		b, ok := m.Memory().Read(uint32(ptr), uint32(n))
		if !ok {
			panic("guest passed an out-of-range buffer")
		}
		return b
	}
	hb := rt.NewHostModuleBuilder(abi.ModuleName)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		st := abi.StatusOK
		if !g.Discard {
			if err := g.Decisions.Add(abi.EmitKind(s[0]), read(m, s[1], s[2])); err != nil {
				st = abi.StatusBadInput
			}
		}
		s[0] = uint64(st)
	}), params, []api.ValueType{i32}).Export(abi.ImportEmit)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.Logs = append(g.Logs, string(read(m, s[1], s[2])))
	}), params, nil).Export(abi.ImportLog)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.Failed = string(read(m, s[1], s[2]))
	}), params, nil).Export(abi.ImportFail)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		if g.Probe == nil {
			s[0] = uint64(abi.StatusUnsupported)
			return
		}
		pairs, err := abi.DecodeL0Pairs(nil, read(m, s[0], s[1]))
		if err != nil {
			s[0] = uint64(abi.StatusBadInput)
			return
		}
		hits := make([]byte, (len(pairs)+7)/8)
		g.Probe(pairs, hits)
		m.Memory().Write(uint32(s[2]), hits)
		s[0] = uint64(abi.StatusOK)
	}), params, []api.ValueType{i32}).Export(abi.ImportProbe)
	return hb
}

// Call calls the export name with raw arguments and returns its single
// result; a trap fails the test. Begin, Deletes, Batch and Run cover the
// protocol; Call is for tests that step outside it on purpose (alloc of a
// given size, a pointer that alloc did not return).
func (g *Guest) Call(name string, args ...uint64) uint64 {
	g.t.Helper()
	res, err := g.mod.ExportedFunction(name).Call(g.ctx, args...)
	if err != nil {
		g.t.Fatalf("%s: %v", name, err)
	}
	return res[0]
}

// send does what the host does for begin/deletes/batch: alloc, write the
// bytes into guest memory, call.
func (g *Guest) send(export string, data []byte) abi.Status {
	g.t.Helper()
	ptr := uint32(g.Call(abi.ExportAlloc, uint64(len(data))))
	if ptr == 0 || ptr%abi.Align != 0 {
		g.t.Fatalf("alloc(%d) = %d, fail message %q", len(data), ptr, g.Failed)
	}
	if !g.mod.Memory().Write(ptr, data) {
		g.t.Fatalf("alloc returned [%d, +%d) outside memory", ptr, len(data))
	}
	return abi.Status(g.Call(export, uint64(ptr), uint64(len(data))))
}

// Begin starts a task (alloc, copy, compact_v1_begin).
func (g *Guest) Begin(task []byte) abi.Status { return g.send(abi.ExportBegin, task) }

// Deletes delivers one deletes batch (alloc, copy, compact_v1_deletes).
func (g *Guest) Deletes(d []byte) abi.Status { return g.send(abi.ExportDeletes, d) }

// Batch delivers one rows batch (alloc, copy, compact_v1_batch).
func (g *Guest) Batch(b []byte) abi.Status { return g.send(abi.ExportBatch, b) }

// Run drives one whole task and returns the first non-OK status (with the
// message in Failed) or the status of compact_v1_finish. Decisions, Logs
// and Failed are reset first.
func (g *Guest) Run(task []byte, deletes, batches [][]byte) abi.Status {
	g.t.Helper()
	g.Decisions, g.Logs, g.Failed = abi.Decisions{}, nil, ""
	if st := g.Begin(task); st != abi.StatusOK {
		return st
	}
	for _, d := range deletes {
		if st := g.Deletes(d); st != abi.StatusOK {
			return st
		}
	}
	for _, b := range batches {
		if st := g.Batch(b); st != abi.StatusOK {
			return st
		}
	}
	return abi.Status(g.Call(abi.ExportFinish))
}
