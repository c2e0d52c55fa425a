package host

import (
	"context"
	"testing"

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
