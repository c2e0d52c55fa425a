package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The regression guard: a short fixed workload whose throughput is
// measured as a ratio to a calibration run in the same job (ZSTD-3 encode
// and decode of the same vectors as arrow-go's Parquet codec does them:
// about a third of the mix's CPU, code this repository does not own), so machine speed and
// load cancel, and whose peak memory above the process baseline is
// compared directly. The stored baseline is testdata/baseline.json.

// GuardRatioTolerance and GuardMemTolerance are the regressions the guard
// accepts: throughput ratio down by at most 15%, peak memory up by at most
// 15%.
const (
	GuardRatioTolerance = 0.15
	GuardMemTolerance   = 0.15
)

// GuardBaseline is the stored outcome of a guard run.
type GuardBaseline struct {
	Command string
	Machine string
	// Ratio maps a guard case to its best throughput divided by the best
	// calibration throughput of the job.
	Ratio map[string]float64
	// PeakAboveBase maps a guard case to its peak RSS minus its RSS after
	// setup, in bytes (smallest over the rounds).
	PeakAboveBase map[string]float64
	Rounds        int
	Note          string `json:",omitempty"`
}

// GuardCases are the fixed cases of the guard: 64 MiB of 768-dim vectors,
// uniform 10% deletes.
func GuardCases() (calib Case, cases []Case) {
	ds := DataSpec{Bytes: 64 << 20, Dim: 768, Segments: 4, Regime: RegimeUniform, Deletes: 0.1}
	calib = Case{Name: "guard/calibration-zstd", Kind: KindZstd, Data: ds, Reps: 3}
	cases = []Case{
		{Name: "guard/mix-wasm", Kind: KindMix, Mode: ModeWasm, Data: ds, Reps: 2},
		{Name: "guard/mix-native", Kind: KindMix, Mode: ModeNative, Data: ds, Reps: 2},
		{Name: "guard/copy", Kind: KindCopy, Data: ds, Reps: 2},
	}
	return calib, cases
}

// calibMBps is the calibration throughput: bytes over encode plus decode time.
func calibMBps(r *Result) float64 {
	return float64(r.InputBytes) / (r.AllSeconds[0] + r.AllSeconds[1]) / 1e6
}

// RunGuard runs rounds of calibration, every guard case, calibration, ...
// through exe's child mode and returns the measured baseline. Load from
// other processes only ever slows a run down, so throughput is the best
// case run over the best calibration run of the job. Peak RSS moves with
// GC timing by up to ~20% between runs of the same code, mostly upward, so
// memory is the smallest peak above setup over the rounds.
func RunGuard(ctx context.Context, exe string, env Env, rounds int) (*GuardBaseline, []*Result, error) {
	calib, cases := GuardCases()
	best := map[string]float64{}
	peaks := map[string][]float64{}
	var all []*Result
	var calibBest float64
	runCalib := func() error {
		r, err := RunCase(ctx, exe, env, calib)
		if err != nil {
			return err
		}
		all = append(all, r)
		calibBest = max(calibBest, calibMBps(r))
		return nil
	}
	if err := runCalib(); err != nil {
		return nil, nil, err
	}
	for range rounds {
		for _, c := range cases {
			r, err := RunCase(ctx, exe, env, c)
			if err != nil {
				return nil, nil, err
			}
			all = append(all, r)
			best[c.Name] = max(best[c.Name], r.MBps)
			peaks[c.Name] = append(peaks[c.Name], float64(r.PeakRSS-r.BaseRSS))
			if err := runCalib(); err != nil {
				return nil, nil, err
			}
		}
	}
	b := &GuardBaseline{Machine: Machine(), Ratio: map[string]float64{}, PeakAboveBase: map[string]float64{}, Rounds: rounds}
	for k, v := range best {
		b.Ratio[k] = v / calibBest
		// The copy floor's single flush of every field at Close lands its
		// peak either before or after a GC: ~740 or ~900 MiB, whole runs
		// long. Its memory is reported, not gated.
		if !strings.HasSuffix(k, "/copy") {
			b.PeakAboveBase[k] = slices.Min(peaks[k])
		}
	}
	return b, all, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// CompareGuard lists the regressions of got against base beyond the
// tolerances; empty means the guard passes.
func CompareGuard(base, got *GuardBaseline) []string {
	var bad []string
	for k, want := range base.Ratio {
		g, ok := got.Ratio[k]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: not measured", k))
			continue
		}
		if g < want*(1-GuardRatioTolerance) {
			bad = append(bad, fmt.Sprintf("%s: throughput/calibration %.4f, baseline %.4f (%.0f%% slower, more than %.0f%%)", k, g, want, 100*(1-g/want), 100*GuardRatioTolerance))
		}
	}
	for k, want := range base.PeakAboveBase {
		g := got.PeakAboveBase[k]
		if want > 0 && g > want*(1+GuardMemTolerance) {
			bad = append(bad, fmt.Sprintf("%s: peak RSS above baseline %.0f MiB, stored %.0f MiB (%.0f%% more, more than %.0f%%)", k, g/(1<<20), want/(1<<20), 100*(g/want-1), 100*GuardMemTolerance))
		}
	}
	slices.Sort(bad)
	return bad
}

// GuardSummary renders got next to base, one line per case.
func GuardSummary(base, got *GuardBaseline) string {
	var b strings.Builder
	keys := make([]string, 0, len(got.Ratio))
	for k := range got.Ratio {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%-20s ratio %.4f (baseline %.4f, %+.1f%%)", k, got.Ratio[k], base.Ratio[k], 100*(got.Ratio[k]/base.Ratio[k]-1))
		if want, ok := base.PeakAboveBase[k]; ok {
			fmt.Fprintf(&b, "  peak-above-base %.0f MiB (baseline %.0f MiB, %+.1f%%)", got.PeakAboveBase[k]/(1<<20), want/(1<<20), 100*(got.PeakAboveBase[k]/want-1))
		}
		b.WriteString("\n")
	}
	return b.String()
}
