package host

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
)

// SweepOptions configures FindOrphans and Sweep.
type SweepOptions struct {
	// RootPath is Milvus's rootPath (default DefaultRootPath).
	RootPath string
	// Results are the results of the plan that were committed (or are
	// about to be): every object they list is kept.
	Results []*datapb.CompactionPlanResult
}

// FindOrphans lists, sorted by key, the objects a crashed or killed task
// of plan may have left behind: log objects (insert, stats, BM25 stats and
// deltalogs) of the plan's collection and partitions whose segment ID is in
// the plan's pre_allocated_segmentIDs or whose log ID is in its
// pre_allocated_logIDs (an L0 task writes deltalogs of existing segments
// under new log IDs), less every object the plan reads and every object a
// result in opts lists (by path, or by segment and log ID when a result
// carries only IDs). Objects whose log ID an input or a result uses are
// kept whatever their key. Each kind of log is listed once per partition
// and filtered by the IDs parsed from its keys, so wide ranges cost no
// more than narrow ones.
func FindOrphans(ctx context.Context, store objstore.Store, plan *datapb.CompactionPlan, opts SweepOptions) ([]objstore.ObjectInfo, error) {
	sw, err := newSweep(plan, opts)
	if err != nil {
		return nil, err
	}
	var orphans []objstore.ObjectInfo
	for _, cp := range sw.partitions {
		for _, kind := range []milvuspath.Kind{milvuspath.KindInsert, milvuspath.KindStats, milvuspath.KindBM25, milvuspath.KindDelta} {
			prefix := path.Join(sw.root, kind.String(), strconv.FormatInt(cp[0], 10), strconv.FormatInt(cp[1], 10)) + "/"
			objs, err := store.List(ctx, prefix)
			if err != nil {
				return nil, fmt.Errorf("host: sweep plan %d: list %s: %w", plan.GetPlanID(), prefix, err)
			}
			for _, o := range objs {
				if sw.orphan(o.Key) {
					orphans = append(orphans, o)
				}
			}
		}
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Key < orphans[j].Key })
	return orphans, nil
}

// Sweep deletes what FindOrphans lists and returns the objects it deleted.
// It goes on past a failed delete; the error then names every key it could
// not delete.
func Sweep(ctx context.Context, store objstore.Store, plan *datapb.CompactionPlan, opts SweepOptions) ([]objstore.ObjectInfo, error) {
	orphans, err := FindOrphans(ctx, store, plan, opts)
	if err != nil {
		return nil, err
	}
	var deleted []objstore.ObjectInfo
	var errs []error
	for _, o := range orphans {
		if err := store.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, o)
	}
	if len(errs) > 0 {
		return deleted, fmt.Errorf("host: sweep plan %d: %d of %d orphans not deleted: %w", plan.GetPlanID(), len(errs), len(orphans), errors.Join(errs...))
	}
	return deleted, nil
}

// sweep holds what one FindOrphans call decides by.
type sweep struct {
	root       string
	partitions [][2]int64 // collection, partition
	segs, logs [2]int64   // half-open ranges
	keep       map[string]bool
	keepLogIDs map[int64]bool
}

func newSweep(plan *datapb.CompactionPlan, opts SweepOptions) (*sweep, error) {
	if plan == nil {
		return nil, errors.New("host: sweep: nil plan")
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: sweep plan %d: %s", ErrInvalidPlan, plan.GetPlanID(), fmt.Sprintf(format, args...))
	}
	sw := &sweep{root: strings.Trim(opts.RootPath, "/"), keep: map[string]bool{}, keepLogIDs: map[int64]bool{}}
	if sw.root == "" {
		sw.root = DefaultRootPath
	}
	r := plan.GetPreAllocatedSegmentIDs()
	sw.segs = [2]int64{r.GetBegin(), r.GetEnd()}
	r = plan.GetPreAllocatedLogIDs()
	sw.logs = [2]int64{r.GetBegin(), r.GetEnd()}
	if sw.segs[0] >= sw.segs[1] && sw.logs[0] >= sw.logs[1] {
		return nil, invalid("no pre-allocated segment or log IDs: nothing is its output")
	}
	// Inputs: the plan's own binlogs, by path (filled from IDs as the task
	// fills them) and by log ID.
	inputs := proto.Clone(plan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(sw.root, inputs); err != nil {
		return nil, invalid("%v", err)
	}
	where := map[int64][2]int64{} // segment -> collection, partition
	seen := map[[2]int64]bool{}
	for _, s := range inputs.GetSegmentBinlogs() {
		cp := [2]int64{s.GetCollectionID(), s.GetPartitionID()}
		where[s.GetSegmentID()] = cp
		if !seen[cp] {
			seen[cp] = true
			sw.partitions = append(sw.partitions, cp)
		}
		sw.keepAll(s.GetFieldBinlogs(), s.GetField2StatslogPaths(), s.GetDeltalogs())
	}
	if len(sw.partitions) == 0 {
		return nil, invalid("no segments: its collection and partition are unknown")
	}
	for i, res := range opts.Results {
		if res.GetPlanID() != plan.GetPlanID() {
			return nil, fmt.Errorf("host: sweep plan %d: result %d is for plan %d", plan.GetPlanID(), i, res.GetPlanID())
		}
		res = proto.Clone(res).(*datapb.CompactionPlanResult)
		for _, s := range res.GetSegments() {
			// A new segment lives in the plan's (first) partition; an L0
			// target where the plan says it does.
			cp, ok := where[s.GetSegmentID()]
			if !ok {
				cp = sw.partitions[0]
			}
			for _, l := range []struct {
				kind milvuspath.Kind
				fbs  []*datapb.FieldBinlog
			}{
				{milvuspath.KindInsert, s.GetInsertLogs()}, {milvuspath.KindStats, s.GetField2StatslogPaths()},
				{milvuspath.KindDelta, s.GetDeltalogs()}, {milvuspath.KindBM25, s.GetBm25Logs()},
			} {
				if err := milvuspath.FillPaths(sw.root, l.kind, cp[0], cp[1], s.GetSegmentID(), l.fbs); err != nil {
					return nil, fmt.Errorf("host: sweep plan %d: result %d: %w", plan.GetPlanID(), i, err)
				}
				sw.keepAll(l.fbs)
			}
		}
	}
	return sw, nil
}

func (sw *sweep) keepAll(lists ...[]*datapb.FieldBinlog) {
	for _, fbs := range lists {
		for _, fb := range fbs {
			for _, b := range fb.GetBinlogs() {
				if p := b.GetLogPath(); p != "" {
					sw.keep[p] = true
				}
				if id := b.GetLogID(); id > 0 {
					sw.keepLogIDs[id] = true
				}
			}
		}
	}
}

// orphan reports whether key is a log object under the plan's output
// ranges that nothing keeps.
func (sw *sweep) orphan(key string) bool {
	if sw.keep[key] {
		return false
	}
	k, err := milvuspath.Parse(key)
	if err != nil || k.Root != sw.root || sw.keepLogIDs[k.LogID] {
		return false // not a log key of this root: never the task's
	}
	in := func(r [2]int64, id int64) bool { return id >= r[0] && id < r[1] }
	return in(sw.segs, k.SegmentID) || in(sw.logs, k.LogID)
}

// DecodeResult decodes a Milvus datapb.CompactionPlanResult given as
// protojson or binary protobuf, as DecodePlan decodes a plan.
func DecodeResult(b []byte) (*datapb.CompactionPlanResult, error) {
	res := new(datapb.CompactionPlanResult)
	if err := decodeMessage(b, res); err != nil {
		return nil, fmt.Errorf("host: decode result %w", err)
	}
	return res, nil
}
