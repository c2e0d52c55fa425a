package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// blockingMix is the mix strategy stopped in Begin (before the task writes
// anything) until release is closed; it then fails the task.
type blockingMix struct {
	*mixstrategy.Strategy
	started chan struct{}
	release chan struct{}
}

func (b *blockingMix) Begin(t *sdk.Task) error {
	close(b.started)
	<-b.release
	return errors.New("released to fail")
}

// withRanges returns a copy of plan under a new plan ID whose segment and
// log ranges are moved by the given offsets.
func withRanges(plan *datapb.CompactionPlan, id, segShift, logShift int64) *datapb.CompactionPlan {
	p := proto.Clone(plan).(*datapb.CompactionPlan)
	p.PlanID = id
	p.PreAllocatedSegmentIDs.Begin += segShift
	p.PreAllocatedSegmentIDs.End += segShift
	p.PreAllocatedLogIDs.Begin += logShift
	p.PreAllocatedLogIDs.End += logShift
	p.BeginLogID = p.PreAllocatedLogIDs.Begin
	return p
}

// TestCompactRefusesOverlappingRanges: while a task runs, a plan whose
// segment or log range overlaps its ranges fails at once with
// ErrOutputRangesInUse naming the running plan, a plan with disjoint
// ranges runs alongside, and the ranges are free again once the task
// ends, whether it failed or succeeded.
func TestCompactRefusesOverlappingRanges(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(6))
	h := newTestHost(t, store, 0, nil)
	a := col.MixPlan
	const far = 1 << 40
	sameRanges := withRanges(a, a.PlanID+1, 0, 0)
	sameLogs := withRanges(a, a.PlanID+2, far, 0)
	disjoint := withRanges(a, a.PlanID+3, 2*far, 2*far)

	block := &blockingMix{Strategy: mixstrategy.New(), started: make(chan struct{}), release: make(chan struct{})}
	var wg sync.WaitGroup
	var aErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, aErr = h.Compact(ctx, a, Native(block))
	}()
	<-block.started

	for _, c := range []struct {
		plan *datapb.CompactionPlan
		want string
	}{
		{sameRanges, "pre_allocated_segmentIDs"},
		{sameLogs, "pre_allocated_logIDs"},
	} {
		_, err := h.Compact(ctx, c.plan, Native(mixstrategy.New()))
		var ce *CompactError
		if !errors.Is(err, ErrOutputRangesInUse) || !errors.As(err, &ce) || ce.Stage != "reserve" {
			t.Fatalf("plan %d: Compact = %v, want ErrOutputRangesInUse at stage reserve", c.plan.PlanID, err)
		}
		for _, frag := range []string{c.want, fmt.Sprintf("overlaps plan %d's", a.PlanID)} {
			if !strings.Contains(err.Error(), frag) {
				t.Fatalf("error %q lacks %q", err, frag)
			}
		}
	}
	if _, err := h.Compact(ctx, disjoint, Native(mixstrategy.New())); err != nil {
		t.Fatalf("a plan with disjoint ranges while plan %d runs: %v", a.PlanID, err)
	}

	close(block.release)
	wg.Wait()
	if aErr == nil || !strings.Contains(aErr.Error(), "released to fail") {
		t.Fatalf("blocked plan: %v, want its strategy's failure", aErr)
	}
	// Free after a failure, then after a success.
	if _, err := h.Compact(ctx, sameRanges, Native(mixstrategy.New())); err != nil {
		t.Fatalf("plan %d after plan %d failed: %v", sameRanges.PlanID, a.PlanID, err)
	}
	if _, err := h.Compact(ctx, sameLogs, Native(mixstrategy.New())); err != nil {
		t.Fatalf("plan %d after plan %d succeeded: %v", sameLogs.PlanID, sameRanges.PlanID, err)
	}
}

func TestOutputRanges(t *testing.T) {
	var o OutputRanges
	mix := &datapb.CompactionPlan{PlanID: 1, Type: datapb.CompactionType_MixCompaction,
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: 100, End: 200}, PreAllocatedLogIDs: &datapb.IDRange{Begin: 1000, End: 2000}}
	release, err := o.Reserve(mix)
	if err != nil {
		t.Fatal(err)
	}
	// An L0 plan writes under no new segment: its segment range is ignored.
	l0 := &datapb.CompactionPlan{PlanID: 2, Type: datapb.CompactionType_Level0DeleteCompaction,
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: 150, End: 160}, PreAllocatedLogIDs: &datapb.IDRange{Begin: 2000, End: 2010}}
	releaseL0, err := o.Reserve(l0)
	if err != nil {
		t.Fatalf("L0 plan next to the mix plan: %v", err)
	}
	edge := &datapb.CompactionPlan{PlanID: 3, Type: datapb.CompactionType_MixCompaction,
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: 199, End: 300}, PreAllocatedLogIDs: &datapb.IDRange{Begin: 3000, End: 4000}}
	if _, err := o.Reserve(edge); !errors.Is(err, ErrOutputRangesInUse) ||
		!strings.Contains(err.Error(), "plan 3: pre_allocated_segmentIDs [199, 300) overlaps plan 1's [100, 200)") {
		t.Fatalf("Reserve(edge) = %v", err)
	}
	release()
	release() // idempotent: does not drop another reservation
	releaseEdge, err := o.Reserve(edge)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := o.Reserve(&datapb.CompactionPlan{PlanID: 4, Type: datapb.CompactionType_Level0DeleteCompaction,
		PreAllocatedLogIDs: &datapb.IDRange{Begin: 2009, End: 2010}}); !strings.Contains(err.Error(), "overlaps plan 2's [2000, 2010)") {
		t.Fatalf("L0 log overlap: %v", err)
	}
	releaseL0()
	releaseEdge()
	if len(o.held) != 0 {
		t.Fatalf("%d reservations left", len(o.held))
	}
}
