package reference

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/statslog"
)

// L0Result is the outcome of an L0 compaction: per target segment ID, the
// delete records it receives, in order. Targets that receive nothing are
// absent.
type L0Result struct {
	Targets map[int64][]Delete
	// Order lists the keys of Targets: plan order for L0, result order for
	// ReadL0.
	Order []int64
}

// L0 computes the expected result of an L0 compaction plan. plan is not
// modified.
func L0(ctx context.Context, store objstore.Store, root string, plan *datapb.CompactionPlan) (*L0Result, error) {
	if plan == nil {
		return nil, errors.New("reference l0: nil plan")
	}
	plan = proto.Clone(plan).(*datapb.CompactionPlan)
	fail := func(err error) (*L0Result, error) {
		return nil, fmt.Errorf("reference l0: plan %d: %w", plan.GetPlanID(), err)
	}
	if err := milvuspath.FillPlan(root, plan); err != nil {
		return fail(err)
	}
	pkf, _, err := pkField(plan.GetSchema())
	if err != nil {
		return fail(err)
	}
	var deletes []Delete
	var targets []*datapb.CompactionSegmentBinlogs
	for _, seg := range plan.GetSegmentBinlogs() {
		if seg.GetLevel() != datapb.SegmentLevel_L0 {
			targets = append(targets, seg)
			continue
		}
		d, err := readDeletes(ctx, store, seg.GetSegmentID(), pkf.GetDataType(), seg.GetDeltalogs())
		if err != nil {
			return fail(err)
		}
		deletes = append(deletes, d...)
	}
	if len(targets) == 0 {
		return fail(errors.New("no target (non-L0) segments"))
	}

	res := &L0Result{Targets: map[int64][]Delete{}}
	for _, seg := range targets {
		stats, err := readTargetStats(ctx, store, seg, pkf.GetFieldID())
		if err != nil {
			return fail(err)
		}
		id := seg.GetSegmentID()
		for _, d := range deletes {
			if hits(stats, d.PK) {
				if _, ok := res.Targets[id]; !ok {
					res.Order = append(res.Order, id)
				}
				res.Targets[id] = append(res.Targets[id], d)
			}
		}
	}
	return res, nil
}

// hits is the L0 routing rule: some stats object's bloom filter reports pk
// and its range holds pk.
func hits(stats []*statslog.Stats, pk any) bool {
	for _, s := range stats {
		switch p := pk.(type) {
		case int64:
			if s.MayContainInt64(p) {
				return true
			}
		case string:
			if s.MayContainVarChar(p) {
				return true
			}
		}
	}
	return false
}

// readTargetStats loads a target's pk stats: only the compound file "1"
// when its pk field's stats list holds one, otherwise every file. A target
// without pk stats logs has none (and receives no deletes).
func readTargetStats(ctx context.Context, store objstore.Store, seg *datapb.CompactionSegmentBinlogs, pkFieldID int64) ([]*statslog.Stats, error) {
	var keys []string
	for _, fb := range seg.GetField2StatslogPaths() {
		if fb.GetFieldID() != pkFieldID {
			continue
		}
		for _, b := range fb.GetBinlogs() {
			keys = append(keys, b.GetLogPath())
		}
	}
	for _, k := range keys {
		if path.Base(k) == "1" {
			keys = []string{k}
			break
		}
	}
	var out []*statslog.Stats
	for _, k := range keys {
		data, err := readObject(ctx, store, k)
		if err != nil {
			return nil, fmt.Errorf("target segment %d: %w", seg.GetSegmentID(), err)
		}
		list, err := statslog.Decode(k, data)
		if err != nil {
			return nil, fmt.Errorf("target segment %d: %w", seg.GetSegmentID(), err)
		}
		out = append(out, list...)
	}
	return out, nil
}

// ReadL0 reads the deltalogs an L0 compaction produced (every segment of
// res, deltalogs in list order, records in file order) into the form L0
// returns. Each deltalog's entries_num must equal its record count, and its
// timestamp_from/timestamp_to, when set, its smallest and largest ts; the
// plan supplies the pk type and rebuilds paths given only as log IDs.
func ReadL0(ctx context.Context, store objstore.Store, root string, plan *datapb.CompactionPlan, res *datapb.CompactionPlanResult) (*L0Result, error) {
	if plan == nil || res == nil {
		return nil, errors.New("reference read l0: nil plan or result")
	}
	fail := func(err error) (*L0Result, error) {
		return nil, fmt.Errorf("reference read l0: plan %d result: %w", plan.GetPlanID(), err)
	}
	pkf, _, err := pkField(plan.GetSchema())
	if err != nil {
		return fail(err)
	}
	parts := map[int64][2]int64{} // segment -> collection, partition, for compressed paths
	for _, s := range plan.GetSegmentBinlogs() {
		parts[s.GetSegmentID()] = [2]int64{s.GetCollectionID(), s.GetPartitionID()}
	}
	out := &L0Result{Targets: map[int64][]Delete{}}
	for _, seg := range res.GetSegments() {
		id := seg.GetSegmentID()
		if len(seg.GetInsertLogs()) > 0 {
			return fail(fmt.Errorf("segment %d: an L0 result carries insert logs", id))
		}
		fbs := cloneFieldBinlogs(seg.GetDeltalogs())
		cp, ok := parts[id]
		if !ok {
			return fail(fmt.Errorf("segment %d is not a segment of the plan", id))
		}
		if err := milvuspath.FillPaths(root, milvuspath.KindDelta, cp[0], cp[1], id, fbs); err != nil {
			return fail(err)
		}
		for _, fb := range fbs {
			for _, b := range fb.GetBinlogs() {
				d, err := readDeletes(ctx, store, id, pkf.GetDataType(), []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{b}}})
				if err != nil {
					return fail(err)
				}
				if err := checkDeltalogMeta(b, d); err != nil {
					return fail(fmt.Errorf("segment %d: %w", id, err))
				}
				if len(d) == 0 {
					continue
				}
				if _, ok := out.Targets[id]; !ok {
					out.Order = append(out.Order, id)
				}
				out.Targets[id] = append(out.Targets[id], d...)
			}
		}
	}
	return out, nil
}

func checkDeltalogMeta(b *datapb.Binlog, d []Delete) error {
	if b.GetEntriesNum() != int64(len(d)) {
		return fmt.Errorf("deltalog %s: entries_num %d, file holds %d records", b.GetLogPath(), b.GetEntriesNum(), len(d))
	}
	if len(d) == 0 || (b.GetTimestampFrom() == 0 && b.GetTimestampTo() == 0) {
		return nil
	}
	lo, hi := d[0].TS, d[0].TS
	for _, r := range d {
		lo, hi = min(lo, r.TS), max(hi, r.TS)
	}
	if b.GetTimestampFrom() != lo || b.GetTimestampTo() != hi {
		return fmt.Errorf("deltalog %s: timestamp_from/to %d/%d, records span %d/%d",
			b.GetLogPath(), b.GetTimestampFrom(), b.GetTimestampTo(), lo, hi)
	}
	return nil
}

func cloneFieldBinlogs(in []*datapb.FieldBinlog) []*datapb.FieldBinlog {
	out := make([]*datapb.FieldBinlog, len(in))
	for i, fb := range in {
		out[i] = proto.Clone(fb).(*datapb.FieldBinlog)
	}
	return out
}
