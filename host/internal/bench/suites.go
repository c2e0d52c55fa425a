package bench

import (
	"fmt"
	"sort"
	"strings"
)

// Suite names, in the order a full run executes them.
var SuiteNames = []string{"headline", "v2", "memory", "memknobs", "scaling", "l0", "hotswap", "concurrency", "minio", "zstd"}

// Options sizes the suites.
type Options struct {
	Size       int64 // headline uncompressed input bytes
	MemSize    int64 // memory suite input: about 10x the lease
	KnobSize   int64 // memknobs suite input
	ScaleBase  int64 // scaling 1x input (16x is 16 * ScaleBase)
	Reps       int   // repetitions per timed case (best reported)
	Segments   int   // L1 segments of the mix datasets
	L0Deletes  int
	L0Targets  []int
	ConcBytes  int64 // input of each concurrent plan
	Concurrent int
	Fit        int
}

// DefaultOptions are the headline sizes: 1 GiB input.
func DefaultOptions() Options {
	return Options{Size: 1 << 30, MemSize: 2 << 30, KnobSize: 512 << 20, ScaleBase: 32 << 20, Reps: 1, Segments: 4, L0Deletes: 20000,
		L0Targets: []int{1, 16, 128, 1000}, ConcBytes: 64 << 20, Concurrent: 8, Fit: 2}
}

func mixSpec(o Options, bytes int64, reg Regime) DataSpec {
	d := 0.1
	if reg == RegimeNone {
		d = 0
	}
	return DataSpec{Bytes: bytes, Dim: 768, Segments: o.Segments, Regime: reg, Deletes: d}
}

// Cases returns the cases of one suite.
func Cases(suite string, o Options) ([]Case, error) {
	var cs []Case
	switch suite {
	case "headline":
		for _, reg := range Regimes {
			ds := mixSpec(o, o.Size, reg)
			for _, c := range []Case{
				{Kind: KindMix, Mode: ModeWasm},
				{Kind: KindMix, Mode: ModeNative},
				{Kind: KindCopy},
				{Kind: KindMix, Mode: ModeWasmUnchecked},
				{Kind: KindCopy, Vectors: VectorsRaw},
				{Kind: KindMix, Mode: ModeWasm, Vectors: VectorsRaw},
				{Kind: KindCopy, Vectors: VectorsNoDict},
				{Kind: KindMix, Mode: ModeWasm, Vectors: VectorsNoDict},
			} {
				c.Data, c.Reps = ds, o.Reps
				c.Name = caseName("headline", string(reg), c)
				cs = append(cs, c)
			}
		}
	case "v2":
		// Storage v2 in and out against v1 in and out, per delete regime,
		// on the headline's data (the same rows in either format).
		for _, reg := range Regimes {
			for _, v := range []int64{0, 2} {
				ds := mixSpec(o, o.Size, reg)
				ds.StorageVersion = v
				for _, c := range []Case{{Kind: KindMix, Mode: ModeWasm}, {Kind: KindMix, Mode: ModeNative}} {
					c.Data, c.Reps = ds, o.Reps
					c.Name = caseName("v2", fmt.Sprintf("%s/v%d", reg, max(v, 1)), c)
					cs = append(cs, c)
				}
			}
		}
	case "memory":
		for _, m := range []string{ModeWasm, ModeNative} {
			c := Case{Kind: KindMix, Mode: m, Data: mixSpec(o, o.MemSize, RegimeUniform), Reps: 1}
			c.Name = caseName("memory", "uniform", c)
			cs = append(cs, c)
		}
	case "memknobs":
		// Which host settings bound the peak (for the owners of segread,
		// segwrite and mempool): input KnobSize, uniform deletes, wasm mix.
		ds := mixSpec(o, o.KnobSize, RegimeUniform)
		for _, k := range []struct {
			name string
			c    Case
		}{
			{"defaults-batch-8192", Case{}},
			{"no-heap-limit", Case{NoHeapLimit: true}},
			{"no-heap-limit-vectors-nodict", Case{NoHeapLimit: true, Vectors: VectorsNoDict}},
			{"batch-4096", Case{BatchRows: 4096}},
			{"batch-1024", Case{BatchRows: 1024}},
			{"read-par-1", Case{ReadParallelism: 1}},
			{"upload-par-1", Case{UploadParallelism: 1}},
			{"all-three", Case{BatchRows: 1024, ReadParallelism: 1, UploadParallelism: 1}},
			{"gomemlimit-256MiB", Case{MemLimit: "256MiB"}},
		} {
			c := k.c
			c.Kind, c.Mode, c.Data, c.Name = KindMix, ModeWasm, ds, "memknobs/"+k.name
			cs = append(cs, c)
		}
	case "scaling":
		for _, k := range []int64{1, 4, 16} {
			c := Case{Kind: KindMix, Mode: ModeWasm, Data: mixSpec(o, o.ScaleBase*k, RegimeUniform), Reps: o.Reps}
			c.Name = fmt.Sprintf("scaling/%dx", k)
			cs = append(cs, c)
		}
	case "l0":
		for _, t := range o.L0Targets {
			ds := DataSpec{Dim: 8, Segments: t, Regime: RegimeNone, L0Deletes: o.L0Deletes, RowsPerSegment: 2000}
			for _, m := range []string{ModeWasm, ModeNative} {
				cs = append(cs, Case{Name: fmt.Sprintf("l0/%d-targets/%s", t, m), Kind: KindL0, Mode: m, Data: ds, Reps: o.Reps})
			}
		}
	case "hotswap":
		ds := DataSpec{Bytes: 4 << 20, Dim: 8, Segments: 2, Regime: RegimeUniform, Deletes: 0.1}
		cs = append(cs, Case{Name: "hotswap/cold", Kind: KindHotSwap, Data: ds},
			Case{Name: "hotswap/warm", Kind: KindHotSwap, Data: ds, Warm: true})
	case "concurrency":
		cs = append(cs, Case{Name: fmt.Sprintf("concurrency/%d-plans-fit-%d", o.Concurrent, o.Fit), Kind: KindConcurrency, Mode: ModeWasm,
			Data: mixSpec(o, o.ConcBytes, RegimeUniform), Plans: o.Concurrent, Fit: o.Fit})
	case "minio":
		ds := mixSpec(o, o.Size, RegimeUniform)
		for _, st := range []string{"local", "minio"} {
			for _, c := range []Case{{Kind: KindMix, Mode: ModeWasm}, {Kind: KindCopy}} {
				c.Data, c.Reps, c.Store = ds, o.Reps, st
				c.Name = caseName("minio", st, c)
				cs = append(cs, c)
			}
		}
	case "zstd":
		cs = append(cs, Case{Name: "zstd/vectors-768", Kind: KindZstd, Data: mixSpec(o, o.Size, RegimeUniform), Reps: 3})
	default:
		return nil, fmt.Errorf("unknown suite %q (have %s)", suite, strings.Join(SuiteNames, ", "))
	}
	return cs, nil
}

func caseName(suite, sub string, c Case) string {
	n := suite + "/" + sub + "/" + c.Kind
	if c.Mode != "" {
		n += "-" + c.Mode
	}
	if c.Vectors != "" {
		n += "/vectors-" + c.Vectors
	}
	return n
}

// Markdown renders the results as a table.
func Markdown(rs []*Result) string {
	var b strings.Builder
	b.WriteString("| case | input MB | rows | s (best) | MB/s | rows/s | stored out MB | lease MiB | base RSS MiB | peak RSS MiB | (peak-base)/lease | extra |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		var ex []string
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := r.Extra[k]
			switch {
			case strings.HasSuffix(k, "bytes") || k == "pool_total" || k == "max_used" || k == "rusage_maxrss":
				ex = append(ex, fmt.Sprintf("%s=%.0fMiB", k, v/(1<<20)))
			case v == float64(int64(v)):
				ex = append(ex, fmt.Sprintf("%s=%.0f", k, v))
			default:
				ex = append(ex, fmt.Sprintf("%s=%.3g", k, v))
			}
		}
		if r.Note != "" {
			ex = append(ex, r.Note)
		}
		ratio := "-"
		if r.Lease > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.PeakRSS-r.BaseRSS)/float64(r.Lease))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %d | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s |\n", r.Case.Name,
			float64(r.InputBytes)/1e6, r.Rows, r.Seconds, r.MBps, r.RowsPerSec, float64(r.OutputStored)/1e6,
			float64(r.Lease)/(1<<20), float64(r.BaseRSS)/(1<<20), float64(r.PeakRSS)/(1<<20), ratio, strings.Join(ex, " "))
	}
	return b.String()
}
