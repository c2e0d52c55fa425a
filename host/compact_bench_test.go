package host

import (
	"context"
	"testing"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// BenchmarkCompactMix compacts one generated mix plan (4 segments of
// 25,000 rows, 32-dim vectors, 10% deletes, 10% expired) on the local
// store, through the wasm build of plugins/mix and through the same
// strategy linked natively: the difference is the sandbox's cost.
//
//	go test ./host -run XXX -bench CompactMix -benchtime 3x
func BenchmarkCompactMix(b *testing.B) {
	store := objstoretest.Local(b)
	cfg := smallGen(11)
	cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.Dim = 4, 25_000, 10_000, 32
	for _, sorted := range []bool{false, true} {
		cfg.Sorted = sorted
		cfg.CollectionID++
		col := generate(b, store, cfg)
		name := "unsorted"
		if sorted {
			name = "sorted"
		}
		for _, mode := range []string{"wasm", "native"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				opt := Native(mixstrategy.New())
				if mode == "wasm" {
					opt = WithPlugin(admit(b, pipelineRuntime(b), "mix@1.0.0", mixWasm(b)))
				}
				h := newTestHost(b, store, 0, func(o *Options) { o.BatchRows = DefaultBatchRows })
				ctx := context.Background()
				b.ResetTimer()
				for range b.N {
					res, err := h.Compact(ctx, col.MixPlan, opt)
					if err != nil {
						b.Fatal(err)
					}
					// Outputs are never overwritten: remove them for the next run.
					b.StopTimer()
					for _, k := range resultKeys(res) {
						if err := store.Delete(ctx, k); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(col.Expected.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(col.InputMemorySize)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
			})
		}
	}
}
