package host

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestHostilePlans mutates valid plans (ID ranges, paths, counts,
// duplicates, sizes, schema) thousands of times and runs each through
// Compact. Whatever the outcome, after every run: every object that existed
// before (the inputs and the kept outputs of earlier runs) is unchanged, a
// failed run left no object behind, and a successful run created exactly
// the objects its result lists, all inside the plan's pre-allocated ranges.
// Outputs of some successful runs are kept, so later plans with the same
// ranges must collide with them and fail without touching them.
func TestHostilePlans(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		iters := 2000
		if _, ok := store.(*objstore.S3); ok {
			iters = 300
		}
		if raceEnabled {
			iters /= 5
		}
		if testing.Short() {
			iters /= 10
		}
		cfg := smallGen(11)
		cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.L0Deletes = 3, 300, 100, 60
		col := generate(t, store, cfg)
		h := newTestHost(t, store, 256<<20, nil)
		hp := newHostileRun(t, store, col)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
		seed := rng.Uint64()
		t.Logf("%d iterations, seed %d", iters, seed)
		rng = rand.New(rand.NewPCG(seed, 11))
		outcomes := map[string]int{}
		for i := range iters {
			plan, desc := hp.mutate(rng)
			outcome := hp.run(t, h, i, plan, desc, i%25 == 0 || i == iters-1)
			outcomes[outcome]++
			if outcome == "succeeded" && rng.IntN(2) == 0 {
				hp.keepOutputs(t)
			} else {
				hp.dropOutputs(t)
			}
		}
		t.Logf("outcomes: %v", outcomes)
		if outcomes["succeeded"] == 0 || outcomes["failed"] == 0 {
			t.Fatalf("outcomes %v: the mutations should produce both successes and failures", outcomes)
		}
	})
}

// hostileRun holds what the invariants are checked against.
type hostileRun struct {
	store objstore.Store
	col   *gen.Collection
	// protected are the objects no run may change: the inputs and the kept
	// outputs of earlier runs, with their bytes and their listing.
	protected     map[string][]byte
	protectedInfo map[string]objstore.ObjectInfo
	added         []string // objects the last successful run created
	keys          []string // every protected key, for path mutations
	segIDs        []int64  // every input segment ID
	logIDs        []int64  // every input log ID
}

func newHostileRun(t *testing.T, store objstore.Store, col *gen.Collection) *hostileRun {
	hp := &hostileRun{store: store, col: col, protected: snapshot(t, store)}
	hp.protectedInfo = listing(t, store)
	hp.keys = sortedKeys(hp.protected)
	for _, p := range []*datapb.CompactionPlan{col.MixPlan, col.L0Plan} {
		for _, s := range p.GetSegmentBinlogs() {
			hp.segIDs = append(hp.segIDs, s.GetSegmentID())
			forEachBinlog(s, func(_ string, _ *datapb.FieldBinlog, b *datapb.Binlog) { hp.logIDs = append(hp.logIDs, b.GetLogID()) })
		}
	}
	return hp
}

// run compacts plan and checks every invariant; it returns "succeeded" or
// "failed".
func (hp *hostileRun) run(t *testing.T, h *Host, i int, plan *datapb.CompactionPlan, desc string, fullCompare bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt := Native(mixstrategy.New())
	if plan.GetType() == datapb.CompactionType_Level0DeleteCompaction {
		opt = Native(l0strategy.New())
	}
	res, err := func() (res *datapb.CompactionPlanResult, err error) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("iteration %d (%s): Compact panicked: %v", i, desc, r)
			}
		}()
		return h.Compact(ctx, plan, opt)
	}()
	now := listing(t, hp.store)
	for k, info := range hp.protectedInfo {
		got, ok := now[k]
		if !ok {
			t.Fatalf("iteration %d (%s, err %v): object %s was deleted", i, desc, err, k)
		}
		if got.Size != info.Size || !got.ModTime.Equal(info.ModTime) {
			t.Fatalf("iteration %d (%s, err %v): object %s was rewritten (size %d -> %d, mtime %v -> %v)",
				i, desc, err, k, info.Size, got.Size, info.ModTime, got.ModTime)
		}
	}
	if fullCompare {
		snap := snapshot(t, hp.store)
		for k, v := range hp.protected {
			if !bytes.Equal(snap[k], v) {
				t.Fatalf("iteration %d (%s): object %s changed", i, desc, k)
			}
		}
	}
	var added []string
	for k := range now {
		if _, ok := hp.protectedInfo[k]; !ok {
			added = append(added, k)
		}
	}
	slices.Sort(added)
	if err != nil {
		if len(added) > 0 {
			t.Fatalf("iteration %d (%s): the failed run (%v) left %d objects: %v", i, desc, err, len(added), added)
		}
		return "failed"
	}
	listed := resultKeys(res)
	slices.Sort(listed)
	if !slices.Equal(added, listed) {
		t.Fatalf("iteration %d (%s): the run created %v but its result lists %v", i, desc, added, listed)
	}
	for _, k := range added {
		if why := outsideRanges(plan, k); why != "" {
			t.Fatalf("iteration %d (%s): output %s is outside the plan's ranges: %s", i, desc, k, why)
		}
	}
	hp.added = added
	return "succeeded"
}

// keepOutputs makes the last run's outputs protected: later runs must not
// overwrite or delete them.
func (hp *hostileRun) keepOutputs(t *testing.T) {
	t.Helper()
	for _, k := range hp.added {
		hp.protected[k] = objstoretest.ReadAll(t, hp.store, k)
	}
	hp.protectedInfo = listing(t, hp.store)
	hp.keys = sortedKeys(hp.protected)
	hp.added = nil
}

// dropOutputs deletes the last run's outputs.
func (hp *hostileRun) dropOutputs(t *testing.T) {
	t.Helper()
	for _, k := range hp.added {
		if err := hp.store.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	hp.added = nil
}

// mutate returns a copy of the mix or L0 plan with one to three hostile
// changes, and a description of them.
func (hp *hostileRun) mutate(rng *rand.Rand) (*datapb.CompactionPlan, string) {
	base := hp.col.MixPlan
	if rng.IntN(3) == 0 {
		base = hp.col.L0Plan
	}
	plan := proto.Clone(base).(*datapb.CompactionPlan)
	var desc []string
	switch rng.IntN(10) {
	case 0:
		// Same ranges as earlier runs: collides with their kept outputs.
		return plan, "unchanged " + plan.GetType().String()
	case 1, 2:
		// Fresh output ranges: should succeed, and its outputs may be kept.
		k := 1 + rng.Int64N(1000)
		for _, r := range []*datapb.IDRange{plan.GetPreAllocatedSegmentIDs(), plan.GetPreAllocatedLogIDs()} {
			if r != nil {
				n := r.GetEnd() - r.GetBegin()
				r.Begin, r.End = r.Begin+k*n, r.End+k*n
			}
		}
		plan.BeginLogID = plan.GetPreAllocatedLogIDs().GetBegin()
		return plan, fmt.Sprintf("%s with ranges shifted %d times their size", plan.GetType(), k)
	}
	for range 1 + rng.IntN(3) {
		m := hostileMutations[rng.IntN(len(hostileMutations))]
		desc = append(desc, m.name+": "+m.apply(hp, rng, plan))
	}
	return plan, plan.GetType().String() + ", " + strings.Join(desc, "; ")
}

type hostileMutation struct {
	name  string
	apply func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string
}

var hostileMutations = []hostileMutation{
	{"segment range", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		r := hostileRange(rng, plan.GetPreAllocatedSegmentIDs(), hp.segIDs)
		plan.PreAllocatedSegmentIDs = r
		return fmt.Sprintf("[%d, %d)", r.GetBegin(), r.GetEnd())
	}},
	{"log range", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		r := hostileRange(rng, plan.GetPreAllocatedLogIDs(), hp.logIDs)
		plan.PreAllocatedLogIDs = r
		if rng.IntN(2) == 0 {
			plan.BeginLogID = r.GetBegin()
		}
		return fmt.Sprintf("[%d, %d)", r.GetBegin(), r.GetEnd())
	}},
	{"begin log ID", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		plan.BeginLogID = pick(rng, []int64{0, -1, hp.logIDs[rng.IntN(len(hp.logIDs))]})
		return fmt.Sprint(plan.BeginLogID)
	}},
	{"duplicate segment", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		segs := plan.GetSegmentBinlogs()
		s := segs[rng.IntN(len(segs))]
		plan.SegmentBinlogs = append(segs, proto.Clone(s).(*datapb.CompactionSegmentBinlogs))
		return fmt.Sprint(s.GetSegmentID())
	}},
	{"duplicate log", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		fb, b := randomBinlog(rng, plan)
		if fb == nil {
			return "none"
		}
		fb.Binlogs = append(fb.Binlogs, proto.Clone(b).(*datapb.Binlog))
		return fmt.Sprintf("%d %s", b.GetLogID(), b.GetLogPath())
	}},
	{"log path", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		_, b := randomBinlog(rng, plan)
		if b == nil {
			return "none"
		}
		b.LogPath = pick(rng, []string{hp.keys[rng.IntN(len(hp.keys))], hp.keys[rng.IntN(len(hp.keys))],
			"files/insert_log/1/2/3/4/5", "../../etc/passwd", "/abs/key", "a//b", ""})
		if rng.IntN(2) == 0 {
			b.LogID = hp.logIDs[rng.IntN(len(hp.logIDs))]
		}
		return fmt.Sprintf("%q id %d", b.GetLogPath(), b.GetLogID())
	}},
	{"entries", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		_, b := randomBinlog(rng, plan)
		if b == nil {
			return "none"
		}
		b.EntriesNum = pick(rng, []int64{-1, 0, b.GetEntriesNum() + 1, b.GetEntriesNum() - 1, 1 << 40})
		return fmt.Sprint(b.EntriesNum)
	}},
	{"sizes", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		_, b := randomBinlog(rng, plan)
		switch rng.IntN(4) {
		case 0:
			plan.MaxSize = pick(rng, []int64{0, -1, 1, 4096, 1 << 50})
			return fmt.Sprint("max_size ", plan.MaxSize)
		case 1:
			plan.JsonParams = pick(rng, []string{`{"binlog_max_size":1}`, `{"binlog_max_size":-5}`, `{"binlog_max_size":4096}`, `{`, `{"storage_version":2}`})
			return plan.JsonParams
		case 2:
			if b != nil {
				b.MemorySize = pick(rng, []int64{-1, 0, 1, 1 << 45})
				return fmt.Sprint("memory_size ", b.MemorySize)
			}
		}
		if b != nil {
			b.LogSize = pick(rng, []int64{-1, 0, 1, 1 << 45})
			return fmt.Sprint("log_size ", b.LogSize)
		}
		return "none"
	}},
	{"field ID", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		segs := plan.GetSegmentBinlogs()
		s := segs[rng.IntN(len(segs))]
		if len(s.GetFieldBinlogs()) == 0 {
			return "none"
		}
		fb := s.GetFieldBinlogs()[rng.IntN(len(s.GetFieldBinlogs()))]
		fields := plan.GetSchema().GetFields()
		fb.FieldID = pick(rng, []int64{999, -1, fields[rng.IntN(len(fields))].GetFieldID()})
		return fmt.Sprint(fb.FieldID)
	}},
	{"schema", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		sc := plan.GetSchema()
		switch rng.IntN(5) {
		case 0:
			i := rng.IntN(len(sc.Fields))
			sc.Fields = slices.Delete(sc.Fields, i, i+1)
			return "dropped a field"
		case 1:
			for _, f := range sc.Fields {
				if f.GetIsPrimaryKey() {
					f.DataType = pick(rng, []schemapb.DataType{schemapb.DataType_VarChar, schemapb.DataType_Int64, schemapb.DataType_Float})
					return "pk type " + f.DataType.String()
				}
			}
		case 2:
			sc.StructArrayFields = []*schemapb.StructArrayFieldSchema{{FieldID: 500, Name: "s"}}
			return "struct array field"
		case 3:
			sc.Functions = []*schemapb.FunctionSchema{{Name: "bm25", Type: schemapb.FunctionType_BM25, InputFieldIds: []int64{100}, OutputFieldIds: []int64{101}}}
			return "BM25 function"
		}
		f := sc.Fields[rng.IntN(len(sc.Fields))]
		f.TypeParams = []*commonpb.KeyValuePair{{Key: "dim", Value: pick(rng, []string{"0", "-3", "7", "x"})}}
		return fmt.Sprintf("field %d dim %s", f.GetFieldID(), f.TypeParams[0].Value)
	}},
	{"segment identity", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		segs := plan.GetSegmentBinlogs()
		s := segs[rng.IntN(len(segs))]
		switch rng.IntN(5) {
		case 0:
			s.SegmentID = pick(rng, []int64{0, -1, hp.segIDs[rng.IntN(len(hp.segIDs))], 12345})
			return fmt.Sprint("segment ID ", s.SegmentID)
		case 1:
			s.CollectionID = pick(rng, []int64{0, -1, s.GetCollectionID() + 1})
			return fmt.Sprint("collection ", s.CollectionID)
		case 2:
			s.PartitionID = pick(rng, []int64{0, -1, s.GetPartitionID() + 1})
			return fmt.Sprint("partition ", s.PartitionID)
		case 3:
			s.Level = pick(rng, []datapb.SegmentLevel{datapb.SegmentLevel_L0, datapb.SegmentLevel_L1, datapb.SegmentLevel_L2})
			return "level " + s.Level.String()
		}
		s.StorageVersion = pick(rng, []int64{1, 2, 3})
		return fmt.Sprint("storage version ", s.StorageVersion)
	}},
	{"plan", func(hp *hostileRun, rng *rand.Rand, plan *datapb.CompactionPlan) string {
		switch rng.IntN(4) {
		case 0:
			plan.Type = pick(rng, []datapb.CompactionType{datapb.CompactionType_MixCompaction,
				datapb.CompactionType_Level0DeleteCompaction, datapb.CompactionType_ClusteringCompaction})
			return "type " + plan.Type.String()
		case 1:
			plan.CollectionTtl = pick(rng, []int64{-1, 1, 1 << 62})
			return fmt.Sprint("ttl ", plan.CollectionTtl)
		case 2:
			plan.StartTime = pick(rng, []int64{-1, 0, 1, 1 << 62})
			return fmt.Sprint("start ", plan.StartTime)
		}
		plan.PluginContext = []*commonpb.KeyValuePair{{Key: "cipher", Value: "x"}}
		return "plugin context"
	}},
}

// hostileRange returns a range near valid, overlapping inputs, or broken.
func hostileRange(rng *rand.Rand, valid *datapb.IDRange, inputs []int64) *datapb.IDRange {
	in := inputs[rng.IntN(len(inputs))]
	b, e := valid.GetBegin(), valid.GetEnd()
	if e <= b { // an L0 plan has no segment range: make one up
		b, e = in+1<<40, in+1<<40+10_000
	}
	switch rng.IntN(8) {
	case 0:
		return &datapb.IDRange{Begin: in, End: in + 1 + rng.Int64N(1000)}
	case 1:
		return &datapb.IDRange{Begin: in - rng.Int64N(1000), End: in + 1}
	case 2:
		return &datapb.IDRange{Begin: 0, End: e}
	case 3:
		return &datapb.IDRange{Begin: -e, End: -b}
	case 4:
		return &datapb.IDRange{Begin: e, End: b}
	case 5:
		return &datapb.IDRange{Begin: b, End: b + 1 + rng.Int64N(3)}
	case 6:
		return &datapb.IDRange{Begin: b + rng.Int64N(e-b), End: e}
	}
	return &datapb.IDRange{Begin: b, End: b}
}

func randomBinlog(rng *rand.Rand, plan *datapb.CompactionPlan) (*datapb.FieldBinlog, *datapb.Binlog) {
	type ref struct {
		fb *datapb.FieldBinlog
		b  *datapb.Binlog
	}
	var all []ref
	for _, s := range plan.GetSegmentBinlogs() {
		forEachBinlog(s, func(_ string, fb *datapb.FieldBinlog, b *datapb.Binlog) { all = append(all, ref{fb, b}) })
	}
	if len(all) == 0 {
		return nil, nil
	}
	r := all[rng.IntN(len(all))]
	return r.fb, r.b
}

func forEachBinlog(s *datapb.CompactionSegmentBinlogs, fn func(kind string, fb *datapb.FieldBinlog, b *datapb.Binlog)) {
	for kind, fbs := range map[string][]*datapb.FieldBinlog{"insert": s.GetFieldBinlogs(), "delta": s.GetDeltalogs(),
		"stats": s.GetField2StatslogPaths()} {
		for _, fb := range fbs {
			for _, b := range fb.GetBinlogs() {
				fn(kind, fb, b)
			}
		}
	}
}

func pick[T any](rng *rand.Rand, vs []T) T { return vs[rng.IntN(len(vs))] }

// listing maps every key in store to its listing entry.
func listing(t *testing.T, store objstore.Store) map[string]objstore.ObjectInfo {
	t.Helper()
	objs, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]objstore.ObjectInfo, len(objs))
	for _, o := range objs {
		m[o.Key] = o
	}
	return m
}

func sortedKeys(m map[string][]byte) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// outsideRanges says why key is not an output the plan may create, or "".
func outsideRanges(plan *datapb.CompactionPlan, key string) string {
	k, err := milvuspath.Parse(key)
	if err != nil {
		return err.Error()
	}
	in := func(id int64, r *datapb.IDRange) bool { return id >= r.GetBegin() && id < r.GetEnd() }
	if !in(k.LogID, plan.GetPreAllocatedLogIDs()) {
		return fmt.Sprintf("log ID %d not in [%d, %d)", k.LogID, plan.GetPreAllocatedLogIDs().GetBegin(), plan.GetPreAllocatedLogIDs().GetEnd())
	}
	if plan.GetType() == datapb.CompactionType_MixCompaction && !in(k.SegmentID, plan.GetPreAllocatedSegmentIDs()) {
		return fmt.Sprintf("segment ID %d not in [%d, %d)", k.SegmentID, plan.GetPreAllocatedSegmentIDs().GetBegin(), plan.GetPreAllocatedSegmentIDs().GetEnd())
	}
	return ""
}
