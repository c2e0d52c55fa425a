package host

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/compacthost/compacthost/host/internal/reference"

	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestCompactNative runs a generated collection's mix and L0 plans through
// the natively linked strategies and compares with the reference.
func TestCompactNative(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(1))
	var pr progressRecorder
	h := newTestHost(t, store, 0, func(o *Options) { o.Progress = pr.record })
	res, err := h.Compact(ctx, col.MixPlan, Native(mixstrategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkMix(t, store, col.MixPlan, res, pr.final())
	if got := pr.final(); got.RowsRead != col.Expected.Rows || got.Deleted != col.Expected.Deleted || got.Expired != col.Expected.Expired || got.RowsWritten != col.Expected.Kept {
		t.Fatalf("final progress %+v, generator expects %+v", got, col.Expected)
	}
	res, err = h.Compact(ctx, col.L0Plan, Native(l0strategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkL0(t, store, col.L0Plan, res)
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d after the tasks, want 0", u)
	}
}

// TestCompactConcurrent runs mix and L0 plans of three collections at once
// through one Host (shared runtime, plugins and pool) and checks each.
func TestCompactConcurrent(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	store := objstoretest.Local(t)
	h := newTestHost(t, store, 0, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 3 {
		cfg := smallGen(20 + int64(i))
		cfg.CollectionID += int64(i)
		cfg.Sorted = i%2 == 0
		col := generate(t, store, cfg)
		wg.Add(2)
		go func() {
			defer wg.Done()
			res, err := h.Compact(ctx, col.MixPlan, WithPlugin(plugins.mix))
			if err == nil {
				var got *reference.MixResult
				if got, err = reference.ReadMix(ctx, store, DefaultRootPath, col.MixPlan, res); err == nil && got.Counts.Kept != col.Expected.Kept {
					err = fmt.Errorf("plan of collection %d kept %d rows, want %d", cfg.CollectionID, got.Counts.Kept, col.Expected.Kept)
				}
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := h.Compact(ctx, col.L0Plan, WithPlugin(plugins.l0))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d, want 0", u)
	}
}
