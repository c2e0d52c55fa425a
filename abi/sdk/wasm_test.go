//go:build !wasip1

package sdk_test

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk/sdktest"
)

// evenpkPkg is the evenpk test strategy's wasip1 reactor.
const evenpkPkg = "github.com/compacthost/compacthost/abi/sdk/internal/evenpk/wasm"

// newGuest instantiates evenpk.wasm with its linear memory capped at
// limitPages pages of 64 KiB (0 = no cap).
func newGuest(t testing.TB, limitPages uint32) *sdktest.Guest {
	t.Helper()
	return sdktest.New(t, sdktest.Build(t, evenpkPkg), sdktest.Config{MemoryLimitPages: limitPages, GoMemLimit: "48MiB"})
}

func run(g *sdktest.Guest, f fixture) abi.Status { return g.Run(f.task, f.deletes, f.batches) }

func TestWasmEvenPKEndToEnd(t *testing.T) {
	g := newGuest(t, 0)
	t.Logf("evenpk.wasm: %d bytes, declared min memory %d pages (%.2f MiB)",
		len(sdktest.Build(t, evenpkPkg)), g.MinPages, float64(g.MinPages)*65536/(1<<20))
	if m := g.Manifest; m.Name != "evenpk" || m.BatchRows != 4096 {
		t.Fatalf("manifest %+v", m)
	}
	if st := run(g, newFixture(t, 7)); st != abi.StatusOK {
		t.Fatalf("status %s, fail message %q", st, g.Failed)
	}
	if !reflect.DeepEqual(g.Decisions.Runs, wantRuns) || !reflect.DeepEqual(g.Decisions.Counters, wantCounters) {
		t.Fatalf("runs %+v counters %+v", g.Decisions.Runs, g.Decisions.Counters)
	}
	t.Logf("guest log: %q", g.Logs)
	if len(g.Logs) != 3 || !strings.HasPrefix(g.Logs[0], "sdk: memory grant 67108864 bytes") ||
		strings.Join(g.Logs[1:], "|") != "evenpk: plan 7, 2 segments|evenpk: done, 2 outputs" {
		t.Fatalf("logs %q", g.Logs)
	}
	// The same instance serves a second task (Run starts from empty decisions).
	if st := run(g, newFixture(t, 8)); st != abi.StatusOK || !reflect.DeepEqual(g.Decisions.Runs, wantRuns) {
		t.Fatalf("second task: %s %q %+v", st, g.Failed, g.Decisions.Runs)
	}
}

func TestWasmFailures(t *testing.T) {
	cases := []struct {
		name string
		run  func(g *sdktest.Guest) abi.Status
		want abi.Status
		msg  string
	}{
		{"panic", func(g *sdktest.Guest) abi.Status { return g.Begin(newFixture(t, -1).task) },
			abi.StatusError, "panic in compact_v1_begin of strategy evenpk: evenpk was asked to panic"},
		{"out of memory", func(g *sdktest.Guest) abi.Status { return g.Begin(newFixture(t, -2).task) },
			abi.StatusOutOfMemory, "1099511627776 more bytes would not fit"},
		{"grant below static data", func(g *sdktest.Guest) abi.Status {
			return g.Begin(taskJSON(t, 1, abi.CompactionMix, func(t *abi.Task) { t.MemoryGrant = 1 << 20 }))
		}, abi.StatusOutOfMemory, "leaves no heap"},
		{"alloc beyond the grant", func(g *sdktest.Guest) abi.Status {
			if st := g.Begin(newFixture(t, 1).task); st != abi.StatusOK {
				return st
			}
			if ptr := g.Call(abi.ExportAlloc, 100<<20); ptr != 0 {
				return abi.StatusOK
			}
			return abi.StatusOutOfMemory
		}, abi.StatusOutOfMemory, "104857600 more bytes would not fit"},
		{"unsupported", func(g *sdktest.Guest) abi.Status { return g.Begin(taskJSON(t, 1, abi.CompactionL0, nil)) },
			abi.StatusUnsupported, `does not handle "l0"`},
		{"pointer not from alloc", func(g *sdktest.Guest) abi.Status {
			g.Call(abi.ExportAlloc, 64)
			return abi.Status(g.Call(abi.ExportBegin, 8, 16))
		}, abi.StatusBadInput, "outside the buffer"},
		{"batch before begin", func(g *sdktest.Guest) abi.Status { return g.Batch(newFixture(t, 1).batches[0]) },
			abi.StatusBadInput, "no task"},
		{"corrupt batch", func(g *sdktest.Guest) abi.Status {
			f := newFixture(t, 1)
			g.Begin(f.task)
			b := append([]byte(nil), f.batches[0]...)
			binary.LittleEndian.PutUint32(b[HeaderRowsOffset:], 1000)
			return g.Batch(b)
		}, abi.StatusBadInput, "value bytes for 1000 rows"},
	}
	for _, c := range cases {
		g := newGuest(t, 0)
		if st := c.run(g); st != c.want || !strings.Contains(g.Failed, c.msg) {
			t.Errorf("%s: status %s, fail message %q; want %s with %q", c.name, st, g.Failed, c.want, c.msg)
		}
	}
}

// HeaderRowsOffset is where the row count sits in a batch header (ABI.md).
const HeaderRowsOffset = 12

// TestWasmAllocUnderCap: with linear memory capped at the 64 MiB grant, the
// SDK hands out a 48 MiB input buffer and refuses a 62 MiB one with
// OUT_OF_MEMORY and a message instead of letting the Go runtime abort.
func TestWasmAllocUnderCap(t *testing.T) {
	for _, c := range []struct {
		size uint64
		ok   bool
	}{{48 << 20, true}, {62 << 20, false}} {
		g := newGuest(t, 1024)
		if st := g.Begin(newFixture(t, 1).task); st != abi.StatusOK {
			t.Fatalf("begin: %s %q", st, g.Failed)
		}
		ptr := g.Call(abi.ExportAlloc, c.size)
		if got := ptr != 0; got != c.ok {
			t.Errorf("alloc(%d MiB) = %d, fail message %q", c.size>>20, ptr, g.Failed)
		}
		if !c.ok && !strings.Contains(g.Failed, "more bytes would not fit") {
			t.Errorf("alloc(%d MiB): fail message %q", c.size>>20, g.Failed)
		}
	}
}
