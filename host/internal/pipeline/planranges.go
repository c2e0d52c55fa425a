package pipeline

import (
	"fmt"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
)

// checkRange refuses a missing range, a non-positive bound and a reversed
// or empty range: IDs are positive and ranges half-open [begin, end).
func checkRange(name string, r *datapb.IDRange) error {
	b, e := r.GetBegin(), r.GetEnd()
	switch {
	case r == nil:
		return fmt.Errorf("%s is missing", name)
	case b <= 0 || e <= 0:
		return fmt.Errorf("%s [%d, %d) has a zero or negative bound", name, b, e)
	case e < b:
		return fmt.Errorf("%s [%d, %d) is reversed", name, b, e)
	case e == b:
		return fmt.Errorf("%s [%d, %d) is empty", name, b, e)
	}
	return nil
}

// checkOutputRanges refuses output ranges that hold an input ID (an
// output key could then be an input's key: writing it would overwrite the
// input, and cleanup would delete it) or that are too small for the worst
// case. It runs after the plan is split, so p.Type and p.Targets are set.
func checkOutputRanges(p *Plan, in *inputs) error {
	logs := p.GetPreAllocatedLogIDs()
	for _, l := range in.logs {
		if l.id >= logs.GetBegin() && l.id < logs.GetEnd() {
			return fmt.Errorf("pre_allocated_logIDs [%d, %d) holds input log ID %d (segment %d field %d %s %s)",
				logs.GetBegin(), logs.GetEnd(), l.id, l.seg, l.field, l.kind, l.ref)
		}
	}
	// An L0 task writes under no new segment ID, but a segment range it
	// carries must not name its inputs either.
	segs := p.GetPreAllocatedSegmentIDs()
	for _, s := range p.GetSegmentBinlogs() {
		if id := s.GetSegmentID(); id >= segs.GetBegin() && id < segs.GetEnd() {
			return fmt.Errorf("pre_allocated_segmentIDs [%d, %d) holds input segment %d", segs.GetBegin(), segs.GetEnd(), id)
		}
	}
	needSegs, needLogs := worstCase(p, in)
	if p.Type == abi.CompactionMix {
		if n := segs.GetEnd() - segs.GetBegin(); n < needSegs {
			return fmt.Errorf("pre_allocated_segmentIDs [%d, %d) holds %d IDs; keeping every input row can take %d output segments",
				segs.GetBegin(), segs.GetEnd(), n, needSegs)
		}
	}
	if n := logs.GetEnd() - logs.GetBegin(); n < needLogs {
		return fmt.Errorf("pre_allocated_logIDs [%d, %d) holds %d IDs; keeping every input row can take %d log IDs",
			logs.GetBegin(), logs.GetEnd(), n, needLogs)
	}
	return nil
}

// worstCase returns how many segment and log IDs the write stage can take
// when every input row is kept, from the plan's own metadata (B = Σ
// memory_size of the insert binlogs, each times its field's
// binlog.ExpansionRatio as the writer counts it; R = input rows by
// entries_num):
//
//   - mix: outputs = min(B/max_size + 1, R) segment IDs (an output is
//     rotated once it holds max_size bytes; 1 for the placeholder when
//     nothing is kept); chunks = min(B/binlog_max_size + outputs, R) (a
//     chunk is flushed once it holds binlog_max_size bytes, plus one last
//     chunk per output), K log IDs each for the K schema fields, and one
//     log ID per output for its pk stats log;
//   - L0: one log ID per target segment (one deltalog each).
//
// Metadata that understates B only loosens the check: the writer's ID
// ranges still fail the task cleanly when they run out.
//
// DataCoord (Milvus 2.6) allocates far more, so a plan it builds always
// passes. A mix plan gets 11 × preAllocateIDExpansionFactor − 1 = 109,999
// segment IDs ("1 plan + 10 segments" × 10000, SubmitSingleViewToScheduler
// and compaction_trigger.go), and 10000 log IDs per insert, delta, stats
// and BM25 log of its inputs (PreAllocateBinlogIDs, compaction_util.go).
// Milvus's own writer takes IDs the way ours does (K per chunk, one per
// stats log, plus one per BM25 field, which we refuse). Each input chunk
// (K binlogs, one per field) is no larger than a segment, about max_size,
// so K × B/binlog_max_size is at most max_size/binlog_max_size (21 at the
// defaults) per input binlog, and outputs <= input chunks + 1 adds about 3
// more: some 25 log IDs per input binlog, against DataCoord's 10000.
// Reaching 109,999 outputs takes 147 TB of input at the default max_size.
// An L0 plan gets 10000 log IDs per log of its L0 segments and of every
// target (whose insert binlogs DataCoord counts though the plan omits
// them), so at least 10000 per target. The DataNode itself checks only
// that the bounds are not 0 (services.go) and fails when its local
// allocator runs out.
func worstCase(p *Plan, in *inputs) (segs, logs int64) {
	if p.Type == abi.CompactionL0 {
		return 0, int64(len(p.Targets))
	}
	rows := inputRows(p.CompactionPlan)
	capRows := func(n int64) int64 {
		if rows > 0 {
			return min(n, rows)
		}
		return n
	}
	outputs := max(capRows(satAdd(in.insertBytes/p.GetMaxSize(), 1)), 1)
	chunks := capRows(satAdd(in.insertBytes/p.Params.BinlogMaxSize, outputs))
	k := int64(len(p.GetSchema().GetFields()))
	return outputs, satAdd(satMul(k, chunks), outputs)
}

// inputRows is the plan's input row count: per segment the largest
// Σ entries_num over its fields; 0 when no binlog states it.
func inputRows(plan *datapb.CompactionPlan) int64 {
	var total int64
	for _, s := range plan.GetSegmentBinlogs() {
		var seg int64
		for _, fb := range s.GetFieldBinlogs() {
			var n int64
			for _, b := range fb.GetBinlogs() {
				n = satAdd(n, b.GetEntriesNum())
			}
			seg = max(seg, n)
		}
		total = satAdd(total, seg)
	}
	return total
}
