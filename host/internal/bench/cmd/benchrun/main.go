// Command benchrun is the compact-host measurement harness (issue 7). It
// generates its datasets with storage/gen (cached under -work), builds the
// bundled strategies for wasm, and runs every case of the chosen suites in
// its own child process, one at a time, so that each case's peak RSS is its
// own and all ratios come from one run. From the repository root:
//
//	go run ./host/internal/bench/cmd/benchrun -size 1GiB -out /tmp/bench.json
//	go run ./host/internal/bench/cmd/benchrun -size 64MiB -suites headline,l0
//
// Suites: headline, scaling, l0, hotswap, concurrency, minio (needs
// ./scripts/test.sh for the MinIO server), zstd. BENCH.md holds the figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compacthost/compacthost/host/internal/bench"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	os.Exit(run())
}

func run() int {
	o := bench.DefaultOptions()
	size := flag.String("size", "1GiB", "headline input (uncompressed), e.g. 1GiB, 64MiB")
	memSize := flag.String("mem-size", "2GiB", "memory suite input (about 10x the lease)")
	knobSize := flag.String("knob-size", "512MiB", "memknobs suite input")
	base := flag.String("scale-base", "32MiB", "scaling suite 1x input")
	conc := flag.String("conc-size", "64MiB", "input of each plan of the concurrency suite")
	suites := flag.String("suites", "headline,memory,memknobs,scaling,l0,hotswap,concurrency,zstd", "comma-separated suites (minio needs ./scripts/test.sh)")
	only := flag.String("only", "", "run only cases whose name contains this (comma-separated: any of them; =NAME: exactly NAME)")
	work := flag.String("work", filepath.Join(os.TempDir(), "compacthost-bench"), "dataset cache and wasm builds")
	out := flag.String("out", "", "write the JSON report here")
	prepareOnly := flag.Bool("prepare-only", false, "generate (cache) the datasets of the chosen cases and exit")
	profile := flag.String("profile", "", "write a CPU profile of each case to DIR/<case>.pprof")
	flag.IntVar(&o.Reps, "reps", 1, "repetitions per case (best reported)")
	flag.IntVar(&o.Segments, "segments", o.Segments, "L1 segments per mix dataset")
	flag.IntVar(&o.L0Deletes, "l0-deletes", o.L0Deletes, "delete records of the L0 segment")
	flag.Parse()
	var err error
	for _, p := range []struct {
		s string
		v *int64
	}{{*size, &o.Size}, {*memSize, &o.MemSize}, {*knobSize, &o.KnobSize}, {*base, &o.ScaleBase}, {*conc, &o.ConcBytes}} {
		if *p.v, err = parseSize(p.s); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 2
		}
	}
	var cases []bench.Case
	for _, s := range strings.Split(*suites, ",") {
		cs, err := bench.Cases(strings.TrimSpace(s), o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 2
		}
		for _, c := range cs {
			if selected(c.Name, *only) {
				cases = append(cases, c)
			}
		}
	}
	if *prepareOnly {
		for _, c := range cases {
			start := time.Now()
			ds, err := bench.Prepare(context.Background(), *work, c.Data)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchrun:", err)
				return 1
			}
			fmt.Fprintf(os.Stderr, "%s: %s, %d MB uncompressed, %d MB stored (%.1fs)\n", c.Name, ds.Spec.Name(), ds.InputMemorySize/1e6, ds.InputLogSize/1e6, time.Since(start).Seconds())
		}
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: run from the repository (go list -m failed):", err)
		return 1
	}
	env := bench.Env{WorkDir: *work, WasmDir: filepath.Join(*work, "wasm"), CacheDir: filepath.Join(*work, "wazero-cache")}
	if err := bench.BuildWasm(strings.TrimSpace(string(modDir)), env.WasmDir); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	ctx := context.Background()
	rep := &bench.Report{Started: time.Now(), Machine: bench.Machine(), Size: o.Size, Suites: strings.Split(*suites, ",")}
	fmt.Fprintf(os.Stderr, "benchrun: %d cases on %s\n", len(cases), rep.Machine)
	for _, c := range cases {
		// Generate the dataset here (cached), outside any timed child.
		if _, err := bench.Prepare(ctx, env.WorkDir, c.Data); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 1
		}
		ce := env
		if *profile != "" {
			os.MkdirAll(*profile, 0o755)
			ce.Profile = filepath.Join(*profile, strings.ReplaceAll(c.Name, "/", "_")+".pprof")
		}
		start := time.Now()
		r, err := bench.RunCase(ctx, exe, ce, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun: FAILED", err)
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		fmt.Fprintf(os.Stderr, "%-60s %7.2fs %7.0f MB/s %9.0f rows/s peak %5.0f MiB lease %5.0f MiB (wall %.0fs)\n", c.Name, r.Seconds, r.MBps, r.RowsPerSec,
			float64(r.PeakRSS)/(1<<20), float64(r.Lease)/(1<<20), time.Since(start).Seconds())
		rep.Results = append(rep.Results, r)
	}
	var xs, ys []float64
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Case.Name, "scaling/") {
			xs, ys = append(xs, float64(r.InputBytes)), append(ys, r.Seconds)
		}
	}
	if len(xs) >= 2 {
		rep.Scaling = &bench.Scaling{Sizes: xs, Seconds: ys, Exponent: bench.FitExponent(xs, ys)}
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	fmt.Print(bench.Markdown(rep.Results))
	if rep.Scaling != nil {
		fmt.Printf("\nscaling exponent (time ~ size^k): k = %.3f\n", rep.Scaling.Exponent)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 1
		}
	}
	if len(rep.Failures) > 0 {
		return 1
	}
	return 0
}

// parseSize reads 1GiB, 64MiB, 512KiB or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(n * float64(mult)), nil
}

// selected reports whether a case name passes the -only filter.
func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for _, o := range strings.Split(only, ",") {
		if exact, ok := strings.CutPrefix(o, "="); ok {
			if name == exact {
				return true
			}
		} else if strings.Contains(name, o) {
			return true
		}
	}
	return false
}
