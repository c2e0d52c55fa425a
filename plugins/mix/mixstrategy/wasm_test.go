//go:build !wasip1

package mixstrategy_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk/sdktest"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// TestWasmMatchesNative builds plugins/mix for wasip1 and checks that, on
// randomized tasks run one after another in one instance, the wasm build
// emits exactly the decisions (runs, counters, log line) of the native
// strategy.
func TestWasmMatchesNative(t *testing.T) {
	wasm := sdktest.Build(t, "github.com/compacthost/compacthost/plugins/mix")
	g := sdktest.New(t, wasm, sdktest.Config{MemoryLimitPages: 4096}) // 256 MiB, the tasks' memory_grant
	g.CheckManifest(mixstrategy.New().Manifest())
	t.Logf("mix.wasm: %d bytes", len(wasm))
	var logs []string
	setLogger(&logs)
	defer setLogger(nil)
	tasks := 0
	for seed := range uint64(12) {
		for _, pk := range []abi.Type{abi.TypeInt64, abi.TypeString} {
			var sc scenario
			if pk == abi.TypeInt64 {
				sc = genScenario(t, 1000+seed, intKey, pk, true)
			} else {
				sc = genScenario(t, 1000+seed, strKey, pk, true)
			}
			name := fmt.Sprintf("seed %d %s", 1000+seed, pk)
			logs = logs[:0]
			native, nerr := run(t, sc.task, sc.dels, sc.batches)
			st := g.Run(taskBytes(t, sc.task), sc.dels, sc.batches)
			if sc.tooMany {
				if st != abi.StatusError || nerr == nil || !strings.Contains(nerr.Error(), g.Failed) {
					t.Fatalf("%s: wasm %s %q, native %v", name, st, g.Failed, nerr)
				}
				g = sdktest.New(t, wasm, sdktest.Config{MemoryLimitPages: 4096}) // a failed instance is discarded
				continue
			}
			if st != abi.StatusOK || nerr != nil {
				t.Fatalf("%s: wasm %s %q, native %v", name, st, g.Failed, nerr)
			}
			checkScenario(t, name, sc, g.Decisions.Runs, g.Decisions.Counters, nil)
			if !reflect.DeepEqual(g.Decisions.Runs, native.Runs) || !reflect.DeepEqual(g.Decisions.Counters, native.Counters) {
				t.Fatalf("%s: wasm and native decisions differ", name)
			}
			if wl := g.Logs[len(g.Logs)-1]; len(logs) != 1 || wl != logs[0] {
				t.Fatalf("%s: wasm log %q, native %q", name, g.Logs, logs)
			}
			tasks++
		}
	}
	t.Logf("%d tasks decided identically", tasks)
}

// TestWasmOutOfMemory: a task whose announced deletes cannot fit in the
// grant fails in begin with OUT_OF_MEMORY and a message, not a crash.
func TestWasmOutOfMemory(t *testing.T) {
	g := sdktest.New(t, sdktest.Build(t, "github.com/compacthost/compacthost/plugins/mix"), sdktest.Config{MemoryLimitPages: 1024})
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 1, Deletes: 10_000_000}}, func(t *abi.Task) { t.MemoryGrant = 64 << 20 })
	st := g.Run(taskBytes(t, task), nil, nil)
	if st != abi.StatusOutOfMemory || !strings.HasPrefix(g.Failed, "mix: delete index: 160000000 more bytes would not fit") {
		t.Fatalf("status %s, fail message %q", st, g.Failed)
	}
}
