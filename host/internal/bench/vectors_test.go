package bench

import (
	"context"
	"testing"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/host/internal/reference"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// TestVectorOptionsMatchReference is the differential test of the vector
// writer settings the harness compares (uncompressed, dictionary off)
// against the plain path: whatever the vector column's encoding, the mix
// result reads back row for row as the reference computes it, in all
// three delete regimes.
func TestVectorOptionsMatchReference(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	for _, reg := range Regimes {
		spec := tinySpec(reg)
		if reg == RegimeNone {
			spec.Deletes = 0
		}
		ds, err := Prepare(ctx, work, spec)
		if err != nil {
			t.Fatal(err)
		}
		store, err := ds.Store()
		if err != nil {
			t.Fatal(err)
		}
		want, err := reference.Mix(ctx, store, host.DefaultRootPath, ds.MixPlan)
		if err != nil {
			t.Fatal(err)
		}
		for _, vec := range []string{VectorsZstd3, VectorsRaw, VectorsNoDict} {
			fo, err := FieldOptions(vec)
			if err != nil {
				t.Fatal(err)
			}
			pool, err := mempool.NewPool(1 << 30)
			if err != nil {
				t.Fatal(err)
			}
			h, err := host.New(ctx, host.Options{Store: store, Pool: pool, FieldOptions: fo, BatchRows: 500})
			if err != nil {
				t.Fatal(err)
			}
			res, err := h.Compact(ctx, ds.MixPlan, host.Native(mixstrategy.New()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := reference.ReadMix(ctx, store, host.DefaultRootPath, ds.MixPlan, res)
			if err != nil {
				t.Fatal(err)
			}
			if d := reference.DiffMix(want, got); d != "" {
				t.Fatalf("%s, vectors %s: result differs from the reference:\n%s", reg, vec, d)
			}
			if _, err := deleteOutputs(ctx, store, res); err != nil {
				t.Fatal(err)
			}
			h.Close(ctx)
		}
	}
}
