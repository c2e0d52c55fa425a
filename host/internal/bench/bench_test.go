package bench

import (
	"context"
	"math"
	"strings"
	"testing"
)

func tinySpec(reg Regime) DataSpec {
	return DataSpec{Bytes: 256 << 10, Dim: 16, Segments: 2, Regime: reg, Deletes: 0.1}
}

// TestRunMixAndCopy runs the native mix and the copy floor in-process on a
// tiny dataset: the mix keeps exactly the rows gen says survive, the copy
// writes every input row, and both report consistent sizes.
func TestRunMixAndCopy(t *testing.T) {
	ctx := context.Background()
	env := Env{WorkDir: t.TempDir(), CacheDir: t.TempDir()}
	for _, reg := range Regimes {
		spec := tinySpec(reg)
		if reg == RegimeNone {
			spec.Deletes = 0
		}
		ds, err := Prepare(ctx, env.WorkDir, spec)
		if err != nil {
			t.Fatal(err)
		}
		if reg == RegimeNone && ds.Expected.Deleted != 0 || reg != RegimeNone && ds.Expected.Deleted == 0 {
			t.Fatalf("%s: gen deleted %d rows", reg, ds.Expected.Deleted)
		}
		// A second Prepare reads the cache and gives the same plan.
		again, err := Prepare(ctx, env.WorkDir, spec)
		if err != nil || again.MixPlan.GetPlanID() != ds.MixPlan.GetPlanID() || again.InputMemorySize != ds.InputMemorySize {
			t.Fatalf("cached dataset differs: %v", err)
		}
		mix, err := Run(ctx, env, Case{Name: "mix", Kind: KindMix, Mode: ModeNative, Data: spec, Reps: 2})
		if err != nil {
			t.Fatal(err)
		}
		if mix.RowsOut != ds.Expected.Kept || mix.Rows != ds.Expected.Rows || len(mix.AllSeconds) != 2 || mix.Lease <= 0 || mix.PeakRSS <= 0 {
			t.Fatalf("%s mix: %+v, want %d of %d rows kept", reg, mix, ds.Expected.Kept, ds.Expected.Rows)
		}
		for _, v := range []string{VectorsZstd3, VectorsRaw} {
			cp, err := Run(ctx, env, Case{Name: "copy", Kind: KindCopy, Data: spec, Vectors: v})
			if err != nil {
				t.Fatal(err)
			}
			if cp.RowsOut != ds.Expected.Rows || cp.OutputStored <= 0 || cp.MBps <= 0 {
				t.Fatalf("%s copy %s: %+v, want every one of %d rows", reg, v, cp, ds.Expected.Rows)
			}
		}
	}
}

func TestFieldOptionsUnknown(t *testing.T) {
	if _, err := FieldOptions("lz4"); err == nil || !strings.Contains(err.Error(), `"lz4"`) {
		t.Fatalf("got %v, want an error naming the setting", err)
	}
	fo, err := FieldOptions(VectorsRaw)
	if err != nil || len(fo) != 1 {
		t.Fatalf("raw: %v %v", fo, err)
	}
}

func TestFitExponent(t *testing.T) {
	sizes := []float64{1, 4, 16}
	for _, k := range []float64{1, 1.2, 0.8} {
		secs := make([]float64, len(sizes))
		for i, s := range sizes {
			secs[i] = 3 * math.Pow(s, k)
		}
		if got := FitExponent(sizes, secs); math.Abs(got-k) > 1e-9 {
			t.Fatalf("exponent %v, want %v", got, k)
		}
	}
}

func TestCasesNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range SuiteNames {
		cs, err := Cases(s, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if seen[c.Name] {
				t.Fatalf("duplicate case name %s", c.Name)
			}
			seen[c.Name] = true
		}
	}
	if _, err := Cases("nope", DefaultOptions()); err == nil {
		t.Fatal("unknown suite accepted")
	}
}
