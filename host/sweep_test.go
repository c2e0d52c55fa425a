package host

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func putObject(t *testing.T, s objstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func keysOf(objs []objstore.ObjectInfo) []string {
	keys := []string{}
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestSweepFakedCrash: objects a crashed task left under the plan's output
// ranges are listed and deleted exactly; an output a result lists (by path
// or only by IDs), the inputs and objects outside the ranges stay
// byte-identical.
func TestSweepFakedCrash(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		plan := generate(t, store, smallGen(11)).MixPlan
		in := plan.GetSegmentBinlogs()[0]
		coll, part := in.GetCollectionID(), in.GetPartitionID()
		seg, logID := plan.GetPreAllocatedSegmentIDs().GetBegin(), plan.GetPreAllocatedLogIDs().GetBegin()
		root := DefaultRootPath

		orphans := []string{
			milvuspath.InsertLog(root, coll, part, seg, 100, logID),
			milvuspath.StatsLog(root, coll, part, seg, 100, logID+1),
			milvuspath.BM25Log(root, coll, part, seg+1, 101, 7),               // segment in range, log ID not
			milvuspath.DeltaLog(root, coll, part, in.GetSegmentID(), logID+2), // L0-style: an input segment, a new log ID
		}
		byPath := milvuspath.InsertLog(root, coll, part, seg, 101, logID+3)
		byID := milvuspath.InsertLog(root, coll, part, seg, 102, logID+4)
		foreign := milvuspath.InsertLog(root, coll, part+1, seg, 100, logID+5) // another partition
		outside := milvuspath.InsertLog(root, coll, part, seg-1, 100, 5)       // below both ranges
		for i, k := range append(slices.Clone(orphans), byPath, byID, foreign, outside, root+"/insert_log/notes.txt") {
			putObject(t, store, k, []byte{byte(i), 1, 2, 3})
		}
		result := &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), Segments: []*datapb.CompactionSegment{{
			SegmentID: seg,
			InsertLogs: []*datapb.FieldBinlog{
				{FieldID: 101, Binlogs: []*datapb.Binlog{{LogID: logID + 3, LogPath: byPath}}},
				{FieldID: 102, Binlogs: []*datapb.Binlog{{LogID: logID + 4}}},
			},
		}}}
		opts := SweepOptions{Results: []*datapb.CompactionPlanResult{result}}
		before := snapshot(t, store)

		got, err := FindOrphans(ctx, store, plan, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(orphans))
		if !slices.Equal(keysOf(got), want) {
			t.Fatalf("FindOrphans = %q, want %q", keysOf(got), want)
		}
		if d := diffSnapshots(before, snapshot(t, store)); len(d) > 0 {
			t.Fatalf("FindOrphans changed the store: %v", d)
		}

		deleted, err := Sweep(ctx, store, plan, opts)
		if err != nil || !slices.Equal(keysOf(deleted), want) {
			t.Fatalf("Sweep = %q, %v; want %q", keysOf(deleted), err, want)
		}
		after := snapshot(t, store)
		for _, k := range want {
			delete(before, k)
		}
		if d := diffSnapshots(before, after); len(d) > 0 {
			t.Fatalf("Sweep touched more than the orphans: %v", d)
		}

		// A plan whose ranges cover its own inputs (which validation refuses)
		// still never loses an input to a sweep.
		hostile := proto.Clone(plan).(*datapb.CompactionPlan)
		first := in.GetFieldBinlogs()[0].GetBinlogs()[0].GetLogID()
		hostile.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: 0, End: 1 << 62}
		hostile.PreAllocatedLogIDs = &datapb.IDRange{Begin: first, End: 1 << 62}
		got, err = FindOrphans(ctx, store, hostile, opts)
		if err != nil {
			t.Fatal(err)
		}
		filled := proto.Clone(plan).(*datapb.CompactionPlan)
		if err := milvuspath.FillPlan(root, filled); err != nil {
			t.Fatal(err)
		}
		inputs := 0
		for _, s := range filled.GetSegmentBinlogs() {
			for _, fbs := range [][]*datapb.FieldBinlog{s.GetFieldBinlogs(), s.GetField2StatslogPaths(), s.GetDeltalogs()} {
				for _, fb := range fbs {
					for _, b := range fb.GetBinlogs() {
						inputs++
						if slices.Contains(keysOf(got), b.GetLogPath()) {
							t.Fatalf("FindOrphans of a plan covering its inputs lists the input %s", b.GetLogPath())
						}
					}
				}
			}
		}
		if inputs == 0 || !slices.Contains(keysOf(got), outside) {
			t.Fatalf("FindOrphans of a plan covering everything = %q; want %s among them (%d inputs kept)", keysOf(got), outside, inputs)
		}
	})
}

// TestSweepAfterUncommittedTask: the outputs of a task whose result was
// lost (a killed process) are exactly what FindOrphans lists without the
// result, and nothing with it: for mix (new segments) and L0 (new
// deltalogs of existing segments).
func TestSweepAfterUncommittedTask(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(12))
	h := newTestHost(t, store, 0, nil)
	for _, c := range []struct {
		plan *datapb.CompactionPlan
		opt  CompactOption
	}{
		{col.MixPlan, Native(mixstrategy.New())},
		{col.L0Plan, Native(l0strategy.New())},
	} {
		before := snapshot(t, store)
		res, err := h.Compact(ctx, c.plan, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		var written []string
		for k := range snapshot(t, store) {
			if _, ok := before[k]; !ok {
				written = append(written, k)
			}
		}
		slices.Sort(written)
		got, err := FindOrphans(ctx, store, c.plan, SweepOptions{})
		if err != nil || len(written) == 0 || !slices.Equal(keysOf(got), written) {
			t.Fatalf("plan %d: FindOrphans without the result = %q, %v; want the task's %d outputs %q", c.plan.GetPlanID(), keysOf(got), err, len(written), written)
		}
		got, err = FindOrphans(ctx, store, c.plan, SweepOptions{Results: []*datapb.CompactionPlanResult{res}})
		if err != nil || len(got) != 0 {
			t.Fatalf("plan %d: FindOrphans with the result = %q, %v; want none", c.plan.GetPlanID(), keysOf(got), err)
		}
	}
}

// TestSweepRefuses: a plan without output ranges or segments, and a result
// of another plan, are errors; nothing is listed.
func TestSweepRefuses(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	plan := generate(t, store, smallGen(13)).MixPlan

	noRanges := proto.Clone(plan).(*datapb.CompactionPlan)
	noRanges.PreAllocatedSegmentIDs, noRanges.PreAllocatedLogIDs = nil, nil
	if _, err := FindOrphans(ctx, store, noRanges, SweepOptions{}); !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("plan without ranges: %v, want ErrInvalidPlan", err)
	}
	noSegs := proto.Clone(plan).(*datapb.CompactionPlan)
	noSegs.SegmentBinlogs = nil
	if _, err := FindOrphans(ctx, store, noSegs, SweepOptions{}); !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("plan without segments: %v, want ErrInvalidPlan", err)
	}
	other := &datapb.CompactionPlanResult{PlanID: plan.GetPlanID() + 1}
	if _, err := Sweep(ctx, store, plan, SweepOptions{Results: []*datapb.CompactionPlanResult{other}}); err == nil {
		t.Fatal("a result of another plan was accepted")
	}
}
