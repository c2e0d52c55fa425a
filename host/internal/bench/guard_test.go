package bench

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	guardRun    = flag.Bool("guard", false, "run the regression guard (about a minute)")
	guardUpdate = flag.Bool("guard-update", false, "with -guard: store the measured baseline in testdata/baseline.json")
)

const guardBaselineFile = "testdata/baseline.json"

func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(ChildMain())
	}
	os.Exit(m.Run())
}

// TestRegressionGuard runs the fixed guard workload in child processes and
// fails on a >15% throughput-ratio or peak-memory regression against
// testdata/baseline.json:
//
//	go test ./host/internal/bench -run TestRegressionGuard -guard -v
//	go test ./host/internal/bench -run TestRegressionGuard -guard -guard-update   # new baseline
func TestRegressionGuard(t *testing.T) {
	if !*guardRun && os.Getenv("COMPACT_HOST_BENCH_GUARD") == "" {
		t.Skip("the regression guard runs with -guard or COMPACT_HOST_BENCH_GUARD=1")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(os.TempDir(), "compacthost-bench-guard")
	env := Env{WorkDir: work, WasmDir: filepath.Join(work, "wasm"), CacheDir: filepath.Join(work, "wazero-cache")}
	if err := BuildWasm("../../..", env.WasmDir); err != nil {
		t.Fatal(err)
	}
	calib, _ := GuardCases()
	if _, err := Prepare(context.Background(), work, calib.Data); err != nil {
		t.Fatal(err)
	}
	got, results, err := RunGuard(context.Background(), exe, env, 5)
	if err != nil {
		t.Fatal(err)
	}
	got.Command = "go test ./host/internal/bench -run TestRegressionGuard -guard"
	t.Logf("guard cases:\n%s", Markdown(results))
	if *guardUpdate {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(guardBaselineFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("baseline written to %s", guardBaselineFile)
		return
	}
	b, err := os.ReadFile(guardBaselineFile)
	if err != nil {
		t.Fatal(err)
	}
	var base GuardBaseline
	if err := json.Unmarshal(b, &base); err != nil {
		t.Fatalf("%s: %v", guardBaselineFile, err)
	}
	t.Logf("against %s:\n%s", guardBaselineFile, GuardSummary(&base, got))
	if bad := CompareGuard(&base, got); len(bad) > 0 {
		t.Fatalf("regression beyond the tolerance:\n%s", strings.Join(bad, "\n"))
	}
}

// TestCompareGuard checks the tolerance arithmetic.
func TestCompareGuard(t *testing.T) {
	base := &GuardBaseline{Ratio: map[string]float64{"a": 1.0, "b": 2.0}, PeakAboveBase: map[string]float64{"a": 100 << 20}}
	ok := &GuardBaseline{Ratio: map[string]float64{"a": 0.86, "b": 2.5}, PeakAboveBase: map[string]float64{"a": 114 << 20}}
	if bad := CompareGuard(base, ok); len(bad) != 0 {
		t.Fatalf("within tolerance but flagged: %v", bad)
	}
	slow := &GuardBaseline{Ratio: map[string]float64{"a": 0.84}, PeakAboveBase: map[string]float64{"a": 116 << 20}}
	bad := CompareGuard(base, slow)
	if len(bad) != 3 || !strings.HasPrefix(bad[0], "a: peak RSS") || !strings.HasPrefix(bad[1], "a: throughput") || bad[2] != "b: not measured" {
		t.Fatalf("got %q", bad)
	}
}
