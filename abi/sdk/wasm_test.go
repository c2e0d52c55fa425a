//go:build !wasip1

package sdk_test

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/compacthost/compacthost/abi"
)

var (
	buildOnce sync.Once
	wasmBytes []byte
	buildErr  error
	buildSkip string
	// cache shares compiled code between the runtimes of one test binary.
	cache = wazero.NewCompilationCache()
)

// evenpkWasm builds ./internal/evenpk/wasm as a wasip1 reactor once per test
// binary; it skips when no go toolchain is installed.
func evenpkWasm(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildSkip = "no go toolchain on PATH: " + err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "evenpk")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "evenpk.wasm")
		cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, "./internal/evenpk/wasm")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err, string(msg)}
			return
		}
		wasmBytes, buildErr = os.ReadFile(out)
	})
	if buildSkip != "" {
		t.Skip(buildSkip)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return wasmBytes
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "building evenpk.wasm: " + e.err.Error() + "\n" + e.out }

// guest is one instance of a strategy module plus the minimal compact_v1
// host module this test defines (the real one lives in package host).
type guest struct {
	t      testing.TB
	ctx    context.Context
	rt     wazero.Runtime
	mod    api.Module
	coll   abi.Decisions
	logs   []string
	failed string
	min    uint32
}

func newGuest(t testing.TB) *guest {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	return newGuestIn(t, rt)
}

// newGuestIn instantiates evenpk.wasm in rt, which already has WASI.
func newGuestIn(t testing.TB, rt wazero.Runtime) *guest {
	t.Helper()
	ctx := context.Background()
	g := &guest{t: t, ctx: ctx, rt: rt}
	i32 := api.ValueTypeI32
	read := func(m api.Module, ptr, n uint64) []byte {
		b, ok := m.Memory().Read(uint32(ptr), uint32(n))
		if !ok {
			panic("guest passed an out-of-range buffer")
		}
		return b
	}
	hb := g.rt.NewHostModuleBuilder(abi.ModuleName)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		if err := g.coll.Add(abi.EmitKind(s[0]), read(m, s[1], s[2])); err != nil {
			s[0] = uint64(abi.StatusBadInput)
			return
		}
		s[0] = uint64(abi.StatusOK)
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportEmit)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.logs = append(g.logs, string(read(m, s[1], s[2])))
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		g.failed = string(read(m, s[1], s[2]))
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportFail)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
		s[0] = uint64(abi.StatusUnsupported)
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportProbe)
	if _, err := hb.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := g.rt.CompileModule(ctx, evenpkWasm(t))
	if err != nil {
		t.Fatal(err)
	}
	g.min = cm.ExportedMemories()["memory"].Min()
	g.mod, err = g.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().
		WithStartFunctions(abi.ExportInitialize).WithEnv("GOMEMLIMIT", "48MiB"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *guest) call(name string, args ...uint64) uint64 {
	g.t.Helper()
	res, err := g.mod.ExportedFunction(name).Call(g.ctx, args...)
	if err != nil {
		g.t.Fatalf("%s: %v", name, err)
	}
	return res[0]
}

// send does what the host does for begin/deletes/batch: alloc, write the
// bytes straight into guest memory, call.
func (g *guest) send(export string, data []byte) abi.Status {
	g.t.Helper()
	ptr := uint32(g.call(abi.ExportAlloc, uint64(len(data))))
	if ptr == 0 || ptr%abi.Align != 0 {
		g.t.Fatalf("alloc(%d) = %d", len(data), ptr)
	}
	if !g.mod.Memory().Write(ptr, data) {
		g.t.Fatalf("alloc returned [%d, +%d) outside memory", ptr, len(data))
	}
	return abi.Status(g.call(export, uint64(ptr), uint64(len(data))))
}

func (g *guest) run(f fixture) abi.Status {
	if st := g.send(abi.ExportBegin, f.task); st != abi.StatusOK {
		return st
	}
	for _, d := range f.deletes {
		if st := g.send(abi.ExportDeletes, d); st != abi.StatusOK {
			return st
		}
	}
	for _, b := range f.batches {
		if st := g.send(abi.ExportBatch, b); st != abi.StatusOK {
			return st
		}
	}
	return abi.Status(g.call(abi.ExportFinish))
}

func TestWasmEvenPKEndToEnd(t *testing.T) {
	g := newGuest(t)
	t.Logf("evenpk.wasm: %d bytes, declared min memory %d pages (%.2f MiB)", len(wasmBytes), g.min, float64(g.min)*65536/(1<<20))
	packed := g.call(abi.ExportManifest)
	mj, ok := g.mod.Memory().Read(uint32(packed>>32), uint32(packed))
	if !ok {
		t.Fatalf("manifest at %#x out of range", packed)
	}
	m, err := abi.ParseManifest(mj)
	if err != nil || m.Name != "evenpk" || m.BatchRows != 4096 {
		t.Fatalf("manifest %s: %v", mj, err)
	}
	if st := g.run(newFixture(t, 7)); st != abi.StatusOK {
		t.Fatalf("status %s, fail message %q", st, g.failed)
	}
	if !reflect.DeepEqual(g.coll.Runs, wantRuns) || !reflect.DeepEqual(g.coll.Counters, wantCounters) {
		t.Fatalf("runs %+v counters %+v", g.coll.Runs, g.coll.Counters)
	}
	t.Logf("guest log: %q", g.logs)
	if len(g.logs) != 3 || !strings.HasPrefix(g.logs[0], "sdk: memory grant 67108864 bytes") ||
		strings.Join(g.logs[1:], "|") != "evenpk: plan 7, 2 segments|evenpk: done, 2 outputs" {
		t.Fatalf("logs %q", g.logs)
	}
	// The same instance serves a second task.
	g.coll = abi.Decisions{}
	if st := g.run(newFixture(t, 8)); st != abi.StatusOK || !reflect.DeepEqual(g.coll.Runs, wantRuns) {
		t.Fatalf("second task: %s %q %+v", st, g.failed, g.coll.Runs)
	}
}

func TestWasmFailures(t *testing.T) {
	cases := []struct {
		name string
		run  func(g *guest) abi.Status
		want abi.Status
		msg  string
	}{
		{"panic", func(g *guest) abi.Status { return g.send(abi.ExportBegin, newFixture(t, -1).task) },
			abi.StatusError, "panic in compact_v1_begin of strategy evenpk: evenpk was asked to panic"},
		{"out of memory", func(g *guest) abi.Status { return g.send(abi.ExportBegin, newFixture(t, -2).task) },
			abi.StatusOutOfMemory, "1099511627776 more bytes would not fit"},
		{"grant below static data", func(g *guest) abi.Status {
			return g.send(abi.ExportBegin, taskJSON(t, 1, abi.CompactionMix, func(t *abi.Task) { t.MemoryGrant = 1 << 20 }))
		}, abi.StatusOutOfMemory, "leaves no heap"},
		{"alloc beyond the grant", func(g *guest) abi.Status {
			if st := g.send(abi.ExportBegin, newFixture(t, 1).task); st != abi.StatusOK {
				return st
			}
			if ptr := g.call(abi.ExportAlloc, 100<<20); ptr != 0 {
				return abi.StatusOK
			}
			return abi.StatusOutOfMemory
		}, abi.StatusOutOfMemory, "104857600 more bytes would not fit"},
		{"unsupported", func(g *guest) abi.Status { return g.send(abi.ExportBegin, taskJSON(t, 1, abi.CompactionL0, nil)) },
			abi.StatusUnsupported, `does not handle "l0"`},
		{"pointer not from alloc", func(g *guest) abi.Status {
			g.call(abi.ExportAlloc, 64)
			return abi.Status(g.call(abi.ExportBegin, 8, 16))
		}, abi.StatusBadInput, "outside the buffer"},
		{"batch before begin", func(g *guest) abi.Status { return g.send(abi.ExportBatch, newFixture(t, 1).batches[0]) },
			abi.StatusBadInput, "no task"},
		{"corrupt batch", func(g *guest) abi.Status {
			f := newFixture(t, 1)
			g.send(abi.ExportBegin, f.task)
			b := append([]byte(nil), f.batches[0]...)
			binary.LittleEndian.PutUint32(b[HeaderRowsOffset:], 1000)
			return g.send(abi.ExportBatch, b)
		}, abi.StatusBadInput, "value bytes for 1000 rows"},
	}
	for _, c := range cases {
		g := newGuest(t)
		if st := c.run(g); st != c.want || !strings.Contains(g.failed, c.msg) {
			t.Errorf("%s: status %s, fail message %q; want %s with %q", c.name, st, g.failed, c.want, c.msg)
		}
	}
}

// HeaderRowsOffset is where the row count sits in a batch header (ABI.md).
const HeaderRowsOffset = 12

// TestWasmAllocUnderCap: with linear memory capped at the 64 MiB grant, the
// SDK hands out a 48 MiB input buffer and refuses a 62 MiB one with
// OUT_OF_MEMORY and a message instead of letting the Go runtime abort.
func TestWasmAllocUnderCap(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		size uint64
		ok   bool
	}{{48 << 20, true}, {62 << 20, false}} {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache).WithMemoryLimitPages(1024))
		wasi_snapshot_preview1.MustInstantiate(ctx, rt)
		g := newGuestIn(t, rt)
		if st := g.send(abi.ExportBegin, newFixture(t, 1).task); st != abi.StatusOK {
			t.Fatalf("begin: %s %q", st, g.failed)
		}
		ptr := g.call(abi.ExportAlloc, c.size)
		if got := ptr != 0; got != c.ok {
			t.Errorf("alloc(%d MiB) = %d, fail message %q", c.size>>20, ptr, g.failed)
		}
		if !c.ok && !strings.Contains(g.failed, "more bytes would not fit") {
			t.Errorf("alloc(%d MiB): fail message %q", c.size>>20, g.failed)
		}
		rt.Close(ctx)
	}
}
