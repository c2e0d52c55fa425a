//go:build linux

package mempool

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// uleb appends v as unsigned LEB128.
func uleb(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// section wraps payload as a wasm section with the given id.
func section(id byte, payload ...byte) []byte {
	return append(uleb([]byte{id}, uint32(len(payload))), payload...)
}

// name encodes a wasm name (length-prefixed UTF-8).
func name(s string) []byte { return append(uleb(nil, uint32(len(s))), s...) }

// growModule hand-assembles a module with one memory (min 1 page, no max) and
// four exports:
//
//	grow(pages i32) -> i32   memory.grow
//	size() -> i32            memory.size in pages
//	poke()                   stores 42 at the last byte of memory
//	touch()                  memory.fill(0, 1, size*64Ki): writes every page
func growModule() []byte {
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	m = append(m, section(1, // types
		0x03,
		0x60, 0x01, 0x7f, 0x01, 0x7f, // 0: (i32) -> i32
		0x60, 0x00, 0x01, 0x7f, // 1: () -> i32
		0x60, 0x00, 0x00, // 2: () -> ()
	)...)
	m = append(m, section(3, 0x04, 0x00, 0x01, 0x02, 0x02)...) // funcs
	m = append(m, section(5, 0x01, 0x00, 0x01)...)             // memory: no max, min 1
	var exp []byte
	exp = append(exp, 0x05)
	for i, n := range []string{"grow", "size", "poke", "touch"} {
		exp = append(append(exp, name(n)...), 0x00, byte(i))
	}
	exp = append(append(exp, name("memory")...), 0x02, 0x00)
	m = append(m, section(7, exp...)...)
	bodies := [][]byte{
		{0x00, 0x20, 0x00, 0x40, 0x00, 0x0b}, // local.get 0; memory.grow; end
		{0x00, 0x3f, 0x00, 0x0b},             // memory.size; end
		{0x00, // last = size<<16 - 1; store8 last, 42
			0x3f, 0x00, 0x41, 0x10, 0x74, 0x41, 0x01, 0x6b,
			0x41, 0x2a, 0x3a, 0x00, 0x00, 0x0b},
		{0x00, // memory.fill(0, 1, size<<16)
			0x41, 0x00, 0x41, 0x01, 0x3f, 0x00, 0x41, 0x10, 0x74,
			0xfc, 0x0b, 0x00, 0x0b},
	}
	code := []byte{byte(len(bodies))}
	for _, b := range bodies {
		code = append(uleb(code, uint32(len(b))), b...)
	}
	return append(m, section(10, code...)...)
}

type growInstance struct {
	t                       *testing.T
	mod                     api.Module
	grow, size, poke, touch api.Function
}

func (g *growInstance) call(f api.Function, args ...uint64) int32 {
	g.t.Helper()
	res, err := f.Call(context.Background(), args...)
	if err != nil {
		g.t.Fatalf("%s: %v", f.Definition().Name(), err)
	}
	if len(res) == 0 {
		return 0
	}
	return int32(uint32(res[0]))
}

// instantiate compiles growModule with the compiler engine and instantiates
// it with a as its memory allocator.
func instantiate(t *testing.T, a *MemoryAllocator) *growInstance {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { rt.Close(ctx) })
	compiled, err := rt.CompileModule(ctx, growModule())
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, a), compiled, wazero.NewModuleConfig())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return &growInstance{t: t, mod: mod,
		grow: mod.ExportedFunction("grow"), size: mod.ExportedFunction("size"),
		poke: mod.ExportedFunction("poke"), touch: mod.ExportedFunction("touch")}
}

func memBase(t *testing.T, mod api.Module) uintptr {
	t.Helper()
	v, ok := mod.Memory().Read(0, 1)
	if !ok {
		t.Fatal("memory has no first byte")
	}
	return uintptr(unsafe.Pointer(&v[0]))
}

func TestAllocatorGrowsToCapThenRefuses(t *testing.T) {
	const capPages = 64 // 4 MiB
	a := NewMemoryAllocator(capPages * wasmPageSize)
	g := instantiate(t, a)
	if got := a.Committed(); got != wasmPageSize {
		t.Fatalf("Committed after instantiate = %d, want %d", got, wasmPageSize)
	}
	base := memBase(t, g.mod)
	for pages := int32(1); pages < capPages; pages++ {
		if got := g.call(g.grow, 1); got != pages {
			t.Fatalf("grow(1) at %d pages = %d, want %d", pages, got, pages)
		}
		g.call(g.poke) // the new last byte is writable
		if got := memBase(t, g.mod); got != base {
			t.Fatalf("buffer moved after grow to %d pages: %#x -> %#x", pages+1, base, got)
		}
		if got, want := a.Committed(), uint64(pages+1)*wasmPageSize; got != want {
			t.Fatalf("Committed = %d at %d pages, want %d", got, pages+1, want)
		}
	}
	if got := g.call(g.grow, 1); got != -1 {
		t.Fatalf("grow(1) at the cap = %d, want -1", got)
	}
	if got := g.call(g.grow, 1000); got != -1 {
		t.Fatalf("grow(1000) at the cap = %d, want -1", got)
	}
	if got := a.Refused(); got != 2 {
		t.Fatalf("Refused = %d, want 2", got)
	}
	if got := g.call(g.size); got != capPages {
		t.Fatalf("size after refusals = %d, want %d", got, capPages)
	}
	if got := g.call(g.grow, 0); got != capPages {
		t.Fatalf("grow(0) = %d, want %d", got, capPages)
	}
	g.call(g.touch)
	g.call(g.poke)
	last, ok := g.mod.Memory().ReadByte(capPages*wasmPageSize - 1)
	if !ok || last != 42 {
		t.Fatalf("last byte = %d (ok=%v), want 42", last, ok)
	}
	if got := a.Committed(); got != capPages*wasmPageSize {
		t.Fatalf("Committed = %d, want %d", got, capPages*wasmPageSize)
	}
}

func TestAllocatorCapNotPageMultipleRoundsDown(t *testing.T) {
	a := NewMemoryAllocator(3*wasmPageSize + 100)
	g := instantiate(t, a)
	if got := g.call(g.grow, 2); got != 1 {
		t.Fatalf("grow(2) = %d, want 1", got)
	}
	if got := g.call(g.grow, 1); got != -1 {
		t.Fatalf("grow past the rounded-down cap = %d, want -1", got)
	}
}

func TestAllocatorFreeUnmapsAndAllowsReuse(t *testing.T) {
	const capBytes = 8 * wasmPageSize
	a := NewMemoryAllocator(capBytes)
	g := instantiate(t, a)
	g.call(g.grow, 7)
	if a.Committed() != capBytes {
		t.Fatalf("Committed = %d, want %d", a.Committed(), capBytes)
	}
	mappedBefore := mapped(t, memBase(t, g.mod))
	if !mappedBefore {
		t.Fatal("memory base is not in /proc/self/maps")
	}
	base := memBase(t, g.mod)
	if err := g.mod.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Committed() != 0 {
		t.Fatalf("Committed after close = %d, want 0", a.Committed())
	}
	if mapped(t, base) {
		t.Fatalf("mapping at %#x still present after Free", base)
	}
	a.Release() // no-op now
	// The allocator serves a new instance after Free.
	g2 := instantiate(t, a)
	if got := g2.call(g2.grow, 7); got != 1 {
		t.Fatalf("grow on reused allocator = %d, want 1", got)
	}
	if got := g2.call(g2.grow, 1); got != -1 {
		t.Fatalf("grow past cap on reused allocator = %d, want -1", got)
	}
}

func TestAllocatorDirect(t *testing.T) {
	a := NewMemoryAllocator(2 * wasmPageSize)
	lm := a.Allocate(0, 1<<32)
	b := lm.Reallocate(wasmPageSize)
	if len(b) != wasmPageSize {
		t.Fatalf("len = %d", len(b))
	}
	b[len(b)-1] = 1
	b2 := lm.Reallocate(2 * wasmPageSize)
	if unsafe.SliceData(b2) != unsafe.SliceData(b) || b2[wasmPageSize-1] != 1 {
		t.Fatal("Reallocate moved or lost data")
	}
	if lm.Reallocate(2*wasmPageSize+1) != nil {
		t.Fatal("Reallocate past cap returned memory")
	}
	// A second memory while the first is live gets nothing.
	lm2 := a.Allocate(0, 1<<32)
	if lm2.Reallocate(wasmPageSize) != nil {
		t.Fatal("second live memory was allowed to grow")
	}
	if a.Refused() != 2 {
		t.Fatalf("Refused = %d, want 2", a.Refused())
	}
	lm2.Free()
	if a.Committed() != 2*wasmPageSize {
		t.Fatalf("freeing the refused memory changed Committed to %d", a.Committed())
	}
	lm.Free()
	lm.Free() // idempotent
	if a.Committed() != 0 {
		t.Fatalf("Committed after Free = %d", a.Committed())
	}
	if lm.Reallocate(wasmPageSize) != nil {
		t.Fatal("Reallocate after Free returned memory")
	}
	// max below the cap limits the reservation.
	a3 := NewMemoryAllocator(1 << 30)
	lm3 := a3.Allocate(0, wasmPageSize)
	if lm3.Reallocate(2*wasmPageSize) != nil {
		t.Fatal("Reallocate past the module max returned memory")
	}
	a3.Release()
	if a3.Committed() != 0 {
		t.Fatal("Release left memory committed")
	}
}

func TestAllocatorMinAboveCapNeverSucceeds(t *testing.T) {
	// A module whose minimum memory exceeds the cap must not run. wazero
	// v1.12 panics inside InstantiateModule here (it slices the nil
	// buffer); the host must check the minimum before instantiating.
	a := NewMemoryAllocator(0)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, growModule())
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, a), compiled, wazero.NewModuleConfig())
		if err == nil {
			mod.Close(ctx)
			t.Fatal("instantiation with min above cap succeeded")
		}
	}()
	if a.Refused() < 1 {
		t.Fatalf("Refused = %d, want >= 1", a.Refused())
	}
	a.Release()
}

// rss returns the resident set size of this process in bytes.
func rss(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatalf("parse statm %q: %v", b, err)
	}
	return pages * uint64(os.Getpagesize())
}

// mapped reports whether addr lies in a mapping listed in /proc/self/maps.
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		r, _, _ := strings.Cut(line, " ")
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uint64(addr) >= l && uint64(addr) < h {
			return true
		}
	}
	return false
}

func TestAllocatorRSSBoundedByShare(t *testing.T) {
	const share = 32 << 20 // 512 pages
	const slack = 8 << 20
	a := NewMemoryAllocator(share)
	g := instantiate(t, a) // compile before measuring
	runtime.GC()
	debug.FreeOSMemory()
	before := rss(t)

	// Try to grow far past the share; only the share is granted.
	for g.call(g.grow, 16) != -1 {
	}
	for g.call(g.grow, 1) != -1 {
	}
	if got := g.call(g.size); got != share/wasmPageSize {
		t.Fatalf("size = %d pages, want %d", got, share/wasmPageSize)
	}
	g.call(g.touch) // write every page
	g.call(g.poke)
	after := rss(t)
	grew := int64(after) - int64(before)
	t.Logf("RSS %d -> %d (+%d MiB) with share %d MiB", before, after, grew>>20, share>>20)
	if grew > share+slack {
		t.Fatalf("RSS grew by %d bytes, more than share %d + %d", grew, share, slack)
	}
	if grew < share/2 {
		t.Fatalf("RSS grew by only %d bytes after touching %d; measurement is not meaningful", grew, share)
	}
	if err := g.mod.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	freed := int64(after) - int64(rss(t))
	if freed < share/2 {
		t.Fatalf("closing the module released only %d bytes of RSS", freed)
	}
}

func ExampleNewMemoryAllocator() {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, growModule())
	if err != nil {
		panic(err)
	}
	// One allocator per instance, capped at the lease's strategy share.
	a := NewMemoryAllocator(4 << 20)
	defer a.Release() // frees the reservation even if instantiation fails
	mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, a), compiled, wazero.NewModuleConfig())
	if err != nil {
		panic(err)
	}
	defer mod.Close(ctx)
	grow := mod.ExportedFunction("grow")
	ok, _ := grow.Call(ctx, 63)     // 1 -> 64 pages = 4 MiB: fits
	refused, _ := grow.Call(ctx, 1) // 65 pages: over the cap
	fmt.Println(int32(ok[0]), int32(refused[0]), a.Committed()>>20, "MiB committed,", a.Refused(), "refused")
	// Output:
	// 1 -1 4 MiB committed, 1 refused
}
