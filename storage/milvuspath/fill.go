package milvuspath

import (
	"fmt"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// FillPaths sets LogPath of every binlog in fbs whose LogPath is empty,
// building it from kind, the IDs and the binlog's LogID (and, except for
// deltalogs, the FieldBinlog's FieldID). Binlogs that already carry a
// LogPath are left untouched. A binlog with neither a path nor a positive
// LogID, or a nil entry, is an error naming the segment and field.
func FillPaths(root string, kind Kind, coll, part, seg int64, fbs []*datapb.FieldBinlog) error {
	if _, ok := kindDirs[kind]; !ok {
		return fmt.Errorf("milvuspath: segment %d: unknown log kind %d", seg, int(kind))
	}
	for i, fb := range fbs {
		if fb == nil {
			return fmt.Errorf("milvuspath: segment %d: %s entry %d is nil", seg, kind, i)
		}
		field := fb.GetFieldID()
		if !kind.HasField() {
			field = 0
		}
		for j, b := range fb.GetBinlogs() {
			if b == nil {
				return fmt.Errorf("milvuspath: segment %d field %d: %s binlog %d is nil", seg, fb.GetFieldID(), kind, j)
			}
			if b.GetLogPath() != "" {
				continue
			}
			if b.GetLogID() <= 0 {
				return fmt.Errorf("milvuspath: segment %d field %d: %s binlog %d has an empty log_path and logID %d",
					seg, fb.GetFieldID(), kind, j, b.GetLogID())
			}
			b.LogPath = Key{kind, root, coll, part, seg, field, b.GetLogID()}.String()
		}
	}
	return nil
}

// FillSegment fills the empty log paths of a compaction input segment:
// insert binlogs, stats logs and deltalogs, using the segment's
// collection, partition and segment IDs.
func FillSegment(root string, s *datapb.CompactionSegmentBinlogs) error {
	if s == nil {
		return fmt.Errorf("milvuspath: nil CompactionSegmentBinlogs")
	}
	coll, part, seg := s.GetCollectionID(), s.GetPartitionID(), s.GetSegmentID()
	for _, l := range []struct {
		kind Kind
		fbs  []*datapb.FieldBinlog
	}{
		{KindInsert, s.GetFieldBinlogs()},
		{KindStats, s.GetField2StatslogPaths()},
		{KindDelta, s.GetDeltalogs()},
	} {
		if err := FillPaths(root, l.kind, coll, part, seg, l.fbs); err != nil {
			return err
		}
	}
	return nil
}

// FillPlan applies FillSegment to every input segment of a plan.
func FillPlan(root string, plan *datapb.CompactionPlan) error {
	if plan == nil {
		return fmt.Errorf("milvuspath: nil CompactionPlan")
	}
	for _, s := range plan.GetSegmentBinlogs() {
		if err := FillSegment(root, s); err != nil {
			return fmt.Errorf("plan %d: %w", plan.GetPlanID(), err)
		}
	}
	return nil
}
