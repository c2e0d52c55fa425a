//go:build !wasip1

package l0strategy_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk/sdktest"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
)

// TestWasmMatchesNative builds plugins/l0 for wasip1 and checks that on
// randomized L0 tasks (int64 and string keys, probing and UNSUPPORTED) the
// wasm build emits exactly the pairs and log line of the native strategy.
func TestWasmMatchesNative(t *testing.T) {
	wasm := sdktest.Build(t, "github.com/compacthost/compacthost/plugins/l0")
	g := sdktest.New(t, wasm, sdktest.Config{MemoryLimitPages: 1024}) // 64 MiB, the tasks' memory_grant
	g.CheckManifest(l0strategy.New().Manifest())
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 0x7761))
		pkType := []abi.Type{abi.TypeInt64, abi.TypeString}[seed%2]
		key := func(v int64) any { return v }
		if pkType == abi.TypeString {
			key = func(v int64) any { return strconv.FormatInt(v, 10) }
		}
		var counts []uint64
		var dels [][]byte
		var keys []string
		total := uint64(0)
		for s := range 1 + r.IntN(3) {
			n := r.IntN(4000)
			counts = append(counts, uint64(n))
			var i64 []int64
			var strs []string
			for range n {
				v := r.Int64N(2000)
				i64, strs = append(i64, v), append(strs, fmt.Sprint(key(v)))
			}
			keys = append(keys, strs...)
			if pkType == abi.TypeInt64 {
				dels = append(dels, delBatch(t, uint32(s), total, i64))
			} else {
				dels = append(dels, delBatch(t, uint32(s), total, strs))
			}
			total += uint64(n)
		}
		var ranges [][]string
		for range 1 + r.IntN(5) {
			if r.IntN(3) == 0 {
				ranges = append(ranges, nil)
				continue
			}
			lo := r.Int64N(2000)
			ranges = append(ranges, []string{fmt.Sprint(key(lo)), fmt.Sprint(key(lo + r.Int64N(800)))})
		}
		task := l0Task(t, pkType, counts, ranges)
		bloom := func(p abi.L0Pair) bool { return len(keys[p.Delete])%2 == 0 || (p.Delete*7+p.Target)%5 == 0 }
		if seed%4 == 3 {
			bloom = nil // the host has no filters
		}
		native, logs, err := runL0(t, task, dels, bloom)
		if err != nil {
			t.Fatal(err)
		}
		g.Probe = nil
		if bloom != nil {
			g.Probe = func(ps []abi.L0Pair, hits []byte) {
				for i, p := range ps {
					if bloom(p) {
						hits[i>>3] |= 1 << (i & 7)
					}
				}
			}
		}
		tj, _ := json.Marshal(task)
		if st := g.Run(tj, dels, nil); st != abi.StatusOK {
			t.Fatalf("seed %d: wasm %s %q", seed, st, g.Failed)
		}
		if !reflect.DeepEqual(g.Decisions.L0, native.L0) {
			t.Fatalf("seed %d: wasm %d pairs, native %d", seed, len(g.Decisions.L0), len(native.L0))
		}
		if wl := g.Logs[len(g.Logs)-1]; len(logs) != 1 || wl != logs[0] {
			t.Fatalf("seed %d: wasm log %q, native %q", seed, g.Logs, logs)
		}
		t.Logf("seed %d %s: %s", seed, pkType, logs[0])
	}
}
