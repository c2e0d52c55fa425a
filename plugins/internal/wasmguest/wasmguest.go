//go:build !wasip1

// Package wasmguest builds a bundled strategy as a wasip1 reactor and
// drives it under wazero with a minimal compact_v1 host module, so tests
// can check that the wasm build decides exactly what the natively linked
// strategy decides. The real host lives in package host; this one only
// collects decisions, logs and fail messages and answers probes.
package wasmguest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
	cache  = wazero.NewCompilationCache()
)

// Build compiles the main package pkg (an import path, e.g.
// "github.com/compacthost/compacthost/plugins/mix") with GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared, once per test binary. It skips the test
// when no go toolchain is on PATH.
func Build(t testing.TB, pkg string) []byte {
	t.Helper()
	mu.Lock()
	b := builds[pkg]
	if b == nil {
		b = new(built)
		builds[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			b.skip = "no go toolchain on PATH, cannot build " + pkg + " for wasip1: " + err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "wasmguest")
		if err != nil {
			b.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "strategy.wasm")
		cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = &buildError{pkg: pkg, err: err, out: string(msg)}
			return
		}
		b.wasm, b.err = os.ReadFile(out)
	})
	if b.skip != "" {
		t.Skip(b.skip)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

type buildError struct {
	pkg string
	err error
	out string
}

func (e *buildError) Error() string {
	return "building " + e.pkg + " for wasip1: " + e.err.Error() + "\n" + e.out
}

// Guest is one instance of a strategy module. It is not safe for
// concurrent use.
type Guest struct {
	t   testing.TB
	ctx context.Context
	mod api.Module
	// Decisions holds every decision emitted since the last Reset.
	Decisions abi.Decisions
	// Logs holds the guest's log lines.
	Logs []string
	// Failed is the last message passed to fail.
	Failed string
	// Probe answers probes: set bit i of hits when pair i may hit. Nil
	// answers UNSUPPORTED.
	Probe func(pairs []abi.L0Pair, hits []byte)
	// Manifest is what the module declared.
	Manifest abi.Manifest
	// Discard drops emitted decisions instead of collecting them (for
	// benchmarks).
	Discard bool
}

// New instantiates wasm in a fresh runtime with its memory capped at
// grantPages pages of 64 KiB (0 = no cap); the runtime closes with the
// test.
func New(t testing.TB, wasm []byte, grantPages uint32) *Guest {
	t.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache)
	if grantPages > 0 {
		cfg = cfg.WithMemoryLimitPages(grantPages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	g := &Guest{t: t, ctx: ctx}
	i32 := api.ValueTypeI32
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
		if g.Discard {
			s[0] = uint64(st)
			return
		}
		if err := g.Decisions.Add(abi.EmitKind(s[0]), read(m, s[1], s[2])); err != nil {
			st = abi.StatusBadInput
		}
		s[0] = uint64(st)
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportEmit)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.Logs = append(g.Logs, string(read(m, s[1], s[2])))
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.Failed = string(read(m, s[1], s[2]))
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportFail)
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
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportProbe)
	if _, err := hb.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	g.mod, err = rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().
		WithStartFunctions(abi.ExportInitialize).WithEnv("GOMEMLIMIT", "200MiB"))
	if err != nil {
		t.Fatal(err)
	}
	packed := g.call(abi.ExportManifest)
	mj, ok := g.mod.Memory().Read(uint32(packed>>32), uint32(packed))
	if !ok {
		t.Fatalf("manifest at %#x is outside guest memory", packed)
	}
	if g.Manifest, err = abi.ParseManifest(mj); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *Guest) call(name string, args ...uint64) uint64 {
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
	ptr := uint32(g.call(abi.ExportAlloc, uint64(len(data))))
	if ptr == 0 || ptr%abi.Align != 0 {
		g.t.Fatalf("alloc(%d) = %d, fail message %q", len(data), ptr, g.Failed)
	}
	if !g.mod.Memory().Write(ptr, data) {
		g.t.Fatalf("alloc returned [%d, +%d) outside memory", ptr, len(data))
	}
	return abi.Status(g.call(export, uint64(ptr), uint64(len(data))))
}

// Begin starts a task (alloc, copy, compact_v1_begin).
func (g *Guest) Begin(task []byte) abi.Status { return g.send(abi.ExportBegin, task) }

// Deletes delivers one deletes batch (alloc, copy, compact_v1_deletes).
func (g *Guest) Deletes(d []byte) abi.Status { return g.send(abi.ExportDeletes, d) }

// Batch delivers one rows batch (alloc, copy, compact_v1_batch).
func (g *Guest) Batch(b []byte) abi.Status { return g.send(abi.ExportBatch, b) }

// Run drives one whole task and returns the first non-OK status (with the
// message in Failed) or OK. Decisions and Logs are reset first.
func (g *Guest) Run(task []byte, deletes, batches [][]byte) abi.Status {
	g.t.Helper()
	g.Decisions, g.Logs, g.Failed = abi.Decisions{}, nil, ""
	if st := g.send(abi.ExportBegin, task); st != abi.StatusOK {
		return st
	}
	for _, d := range deletes {
		if st := g.send(abi.ExportDeletes, d); st != abi.StatusOK {
			return st
		}
	}
	for _, b := range batches {
		if st := g.send(abi.ExportBatch, b); st != abi.StatusOK {
			return st
		}
	}
	return abi.Status(g.call(abi.ExportFinish))
}
