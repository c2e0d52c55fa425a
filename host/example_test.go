package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Example admits a strategy, runs one task in an instance capped at 1 MiB
// and reads back its decisions.
func Example() {
	ctx := context.Background()
	// Config{CacheDir: "/var/cache/compact-host"} keeps compiled code across restarts.
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close(ctx)

	p, err := rt.Admit(ctx, "mix@1.0.0", tmModule(tmOpts{})) // bytes of mix@1.0.0.wasm
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Release()

	inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: 1 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer inst.Close()
	_ = inst.Begin(ctx, []byte(`{"abi":1}`))
	_ = inst.Batch(ctx, 64, func(dst []byte) error { return nil }) // encode the batch into dst
	if err := inst.Finish(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.ID().Ref(), inst.Manifest().Handles, inst.Decisions().Runs)
	// Output: mix@1.0.0 [mix] [{0 3 4 1}]
}

// ExampleRegistry loads plugins from a directory; new tasks acquire the
// highest admitted version.
func ExampleRegistry() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "plugins-")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "mix@1.0.0.wasm"), tmModule(tmOpts{version: "1.0.0"}), 0o644)
	os.WriteFile(filepath.Join(dir, "mix@1.1.0.wasm"), tmModule(tmOpts{version: "1.1.0"}), 0o644)
	os.WriteFile(filepath.Join(dir, "mix@2.0.0.wasm"), []byte("not wasm"), 0o644)

	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close(ctx)
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{ProbeGrant: 1 << 20})
	defer reg.Close()
	if err := reg.Poll(ctx); err != nil { // or go reg.Watch(ctx)
		fmt.Println(err)
		return
	}
	p, err := reg.Acquire("mix")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Release() // after the task's instance is closed
	fmt.Println("serving", p.ID().Ref())
	for _, s := range reg.Plugins() {
		fmt.Println(s.File, s.Active, s.Err != nil)
	}
	// Output:
	// serving mix@1.1.0
	// mix@1.0.0.wasm false false
	// mix@1.1.0.wasm true false
	// mix@2.0.0.wasm false true
}
