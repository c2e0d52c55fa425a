package host

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/compacthost/compacthost/abi"
)

// benchInstance returns a ready instance of wasm (after Begin).
func benchInstance(b *testing.B, rt *Runtime, ref string, wasm []byte, env map[string]string) *Instance {
	b.Helper()
	p := admit(b, rt, ref, wasm)
	inst, err := rt.NewInstance(context.Background(), p, InstanceConfig{Grant: 256 << 20, Env: env})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(inst.Close)
	if err := inst.Begin(context.Background(), []byte(`{}`)); err != nil {
		b.Fatal(err)
	}
	return inst
}

func batchLoop(b *testing.B, inst *Instance, src []byte) {
	b.Helper()
	ctx := context.Background()
	fill := func(dst []byte) error { copy(dst, src); return nil }
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if err := inst.Batch(ctx, uint32(len(src)), fill); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchCrossing: one Batch call with a 256-byte batch (alloc
// call + fill + batch call). "wat" is a hand-written guest doing nothing,
// i.e. the host's own cost; "go" is the Go test guest summing the bytes.
// Each with and without wazero's termination checks (see
// BenchmarkCloseOnContextDone): with them, wazero starts a watcher
// goroutine per guest call.
func BenchmarkBatchCrossing(b *testing.B) {
	src := make([]byte, 256)
	for _, off := range []bool{false, true} {
		mode := "interruptible"
		if off {
			mode = "uninterruptible"
		}
		b.Run("wat/"+mode, func(b *testing.B) {
			rt := newTestRuntime(b, Config{Uninterruptible: off})
			batchLoop(b, benchInstance(b, rt, "mix@1.0.0", tmModule(tmOpts{}), nil), src)
		})
		b.Run("go/"+mode, func(b *testing.B) {
			rt := newTestRuntime(b, Config{Uninterruptible: off})
			batchLoop(b, benchInstance(b, rt, "guest@1.0.0", goGuest(b), map[string]string{"COMPACT_TEST_MODE": "ok"}), src)
		})
	}
}

// BenchmarkWriteGuestMemory: MB/s of 4 MiB batches written into guest
// memory through Batch (the guest's batch export does nothing).
func BenchmarkWriteGuestMemory(b *testing.B) {
	rt := newTestRuntime(b, Config{})
	src := make([]byte, 4<<20)
	for i := range src {
		src[i] = byte(i)
	}
	batchLoop(b, benchInstance(b, rt, "mix@1.0.0", tmModule(tmOpts{minPages: 80}), nil), src)
}

// BenchmarkInstantiate: admission (compile) plus instantiation of the Go
// guest (Go runtime init via _initialize, manifest) in a fresh Runtime:
// "cold" with an empty compilation cache directory, "warm" with one that
// already holds the machine code; "instance" only instantiates an
// already-admitted plugin.
func BenchmarkInstantiate(b *testing.B) {
	wasm := goGuest(b)
	ctx := context.Background()
	once := func(b *testing.B, dir string) {
		rt, err := NewRuntime(ctx, Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		p, err := rt.Admit(ctx, "guest@1.0.0", wasm)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Release()
		inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: 64 << 20})
		if err != nil {
			b.Fatal(err)
		}
		inst.Close()
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			dir, err := os.MkdirTemp("", "host-cold-")
			if err != nil {
				b.Fatal(err)
			}
			once(b, dir)
			os.RemoveAll(dir)
		}
	})
	b.Run("warm", func(b *testing.B) {
		dir := b.TempDir()
		once(b, dir) // populate
		for b.Loop() {
			once(b, dir)
		}
	})
	b.Run("instance", func(b *testing.B) {
		rt := newTestRuntime(b, Config{})
		p := admit(b, rt, "guest@1.0.0", wasm)
		for b.Loop() {
			inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			inst.Close()
		}
	})
}

// BenchmarkCloseOnContextDone measures wazero's WithCloseOnContextDone on
// real guest loops, on ("interruptible", the default) and off
// ("uninterruptible"):
//   - sort: the Go test guest's busy mode, sorting 1024 uint64s 8 times
//     per batch;
//   - evenpk: the SDK's evenpk mix strategy on 4096-row batches (pk, ts,
//     row size), the shape of a real mix strategy's per-row loop.
func BenchmarkCloseOnContextDone(b *testing.B) {
	sortSrc := make([]byte, 8<<10)
	for i := range sortSrc {
		sortSrc[i] = byte(i * 7)
	}
	for _, off := range []bool{false, true} {
		name := "interruptible"
		if off {
			name = "uninterruptible"
		}
		b.Run("sort/"+name, func(b *testing.B) {
			rt := newTestRuntime(b, Config{Uninterruptible: off})
			env := map[string]string{"COMPACT_TEST_MODE": "busy", "COMPACT_TEST_ROUNDS": strconv.Itoa(8)}
			batchLoop(b, benchInstance(b, rt, "guest@1.0.0", goGuest(b), env), sortSrc)
		})
		b.Run("evenpk/"+name, func(b *testing.B) {
			benchEvenPK(b, Config{Uninterruptible: off})
		})
	}
}

func benchEvenPK(b *testing.B, cfg Config) {
	const rows = 4096
	rt := newTestRuntime(b, cfg)
	p := admit(b, rt, "evenpk@0.1.0", buildWasm(b, "../abi/sdk/internal/evenpk/wasm"))
	ctx := context.Background()
	inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: 64 << 20, Emit: func(abi.EmitKind, []byte) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close()
	task := abi.Task{
		ABI: 1, PlanID: 1, Type: abi.CompactionMix, PKFieldID: 100, PKType: abi.TypeInt64,
		Segments: []abi.Segment{{ID: 1, Role: abi.RoleInput, Rows: 1 << 31}},
		Columns: []abi.ColumnInfo{
			{FieldID: 100, Name: "pk", Type: abi.TypeInt64},
			{FieldID: abi.FieldIDTimestamp, Name: "ts", Type: abi.TypeInt64},
			{FieldID: abi.FieldIDRowSize, Name: "size", Type: abi.TypeUint32},
		},
		MaxOutputs: 1 << 20, MaxSize: 1 << 20, MemoryGrant: 64 << 20, BatchRows: rows,
	}
	tj, _ := json.Marshal(task)
	if err := inst.Begin(ctx, tj); err != nil {
		b.Fatal(err)
	}
	pks, ts, sizes := make([]int64, rows), make([]int64, rows), make([]uint32, rows)
	for i := range pks {
		pks[i], ts[i], sizes[i] = int64(i*3), 5, 100
	}
	cols := []abi.ColumnData{abi.Int64Data(100, pks), abi.Int64Data(abi.FieldIDTimestamp, ts), abi.RowSizeData(sizes)}
	n, _ := abi.EncodedSize(rows, cols)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for first := uint64(0); b.Loop(); first += rows {
		if err := inst.SendBatch(ctx, abi.BatchHeader{Kind: abi.BatchRows, FirstRow: first, Rows: rows}, cols); err != nil {
			b.Fatal(err)
		}
	}
}
