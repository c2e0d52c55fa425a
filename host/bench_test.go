package host

import (
	"context"
	"os"
	"strconv"
	"testing"
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
func BenchmarkBatchCrossing(b *testing.B) {
	rt := newTestRuntime(b, Config{})
	src := make([]byte, 256)
	b.Run("wat", func(b *testing.B) {
		batchLoop(b, benchInstance(b, rt, "mix@1.0.0", tmModule(tmOpts{}), nil), src)
	})
	b.Run("go", func(b *testing.B) {
		batchLoop(b, benchInstance(b, rt, "guest@1.0.0", goGuest(b), map[string]string{"COMPACT_TEST_MODE": "ok"}), src)
	})
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

// BenchmarkCloseOnContextDone: the Go guest's busy mode (sort 1024 uint64s
// per round, 8 rounds per batch) with wazero's WithCloseOnContextDone on
// (the default, "interruptible") and off ("uninterruptible").
func BenchmarkCloseOnContextDone(b *testing.B) {
	wasm := goGuest(b)
	src := make([]byte, 8<<10)
	for i := range src {
		src[i] = byte(i * 7)
	}
	env := map[string]string{"COMPACT_TEST_MODE": "busy", "COMPACT_TEST_ROUNDS": strconv.Itoa(8)}
	for _, off := range []bool{false, true} {
		name := "interruptible"
		if off {
			name = "uninterruptible"
		}
		b.Run(name, func(b *testing.B) {
			rt := newTestRuntime(b, Config{Uninterruptible: off})
			batchLoop(b, benchInstance(b, rt, "guest@1.0.0", wasm, env), src)
		})
	}
}
