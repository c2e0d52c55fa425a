package gen

import (
	"encoding/json"
	"math/rand/v2"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/tso"
)

// writeL0 writes the L0 segments: deltalogs whose records hit keys of the L1 segments with
// probability L0HitFraction and otherwise name keys nobody holds (half inside the key range,
// half above it).
func (g *generator) writeL0(col *Collection, segs []*segmentRows) error {
	c := g.cfg
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x10))
	deleteTS := tso.FromTime(c.Now) - 1<<tso.LogicalBits // one millisecond before the plan
	topPK := pkOf(c.RowsPerSegment-1, c.Segments-1, c.Segments)
	for j := range c.L0Segments {
		id := l0SegmentIDBase + int64(j)
		d := &deltalog.Deletes{PKType: c.PKType}
		for k := range c.L0Deletes {
			r := deleteRecord{ts: deleteTS + uint64(j*c.L0Deletes+k)%(1<<tso.LogicalBits)}
			switch {
			case rng.Float64() < c.L0HitFraction:
				seg := segs[rng.IntN(len(segs))]
				r.pkNum = seg.pkNum[rng.IntN(len(seg.pkNum))]
				col.Expected.L0Hits[seg.id]++
			case k%2 == 0:
				r.pkNum = firstPK + 1 + 2*rng.Int64N((topPK-firstPK)/2) // odd: inside the range, absent
			default:
				r.pkNum = topPK + 2 + int64(j*c.L0Deletes+k) // above every segment's max
			}
			if err := g.appendDelete(d, r); err != nil {
				return err
			}
		}
		if d.Len() == 0 {
			continue
		}
		b, err := g.writeDeltalog(id, d)
		if err != nil {
			return err
		}
		col.L0 = append(col.L0, &datapb.CompactionSegmentBinlogs{
			SegmentID: id, CollectionID: c.CollectionID, PartitionID: c.PartitionID,
			InsertChannel: c.Channel, Level: datapb.SegmentLevel_L0,
			Deltalogs: []*datapb.FieldBinlog{{FieldID: 0, Binlogs: []*datapb.Binlog{b}}},
		})
	}
	return nil
}

// jsonParams is the plan's json_params as DataCoord fills it: storage_version is the version
// to write, 2 when every L1 segment is v2 (a stock 2.6 cluster, common.storage.enablev2) and 0
// otherwise, so a v1 or mixed collection's plans ask for v1 output.
func jsonParams(segs []*datapb.CompactionSegmentBinlogs) string {
	version := 2
	for _, s := range segs {
		if s.GetStorageVersion() != 2 {
			version = 0
		}
	}
	b, _ := json.Marshal(map[string]any{
		"storage_version":               version,
		"binlog_max_size":               64 << 20,
		"use_merge_sort":                true,
		"max_segment_merge_sort":        30,
		"bloom_filter_apply_batch_size": 10000,
	})
	return string(b)
}

func countLogs(segs []*datapb.CompactionSegmentBinlogs) int64 {
	var n int64
	for _, s := range segs {
		for _, group := range [][]*datapb.FieldBinlog{s.FieldBinlogs, s.Deltalogs, s.Field2StatslogPaths} {
			for _, fb := range group {
				n += int64(len(fb.Binlogs))
			}
		}
	}
	return n
}

func (g *generator) mixPlan(col *Collection) *datapb.CompactionPlan {
	c := g.cfg
	segs := make([]*datapb.CompactionSegmentBinlogs, len(col.Segments))
	for i, s := range col.Segments {
		segs[i] = proto.Clone(s).(*datapb.CompactionSegmentBinlogs)
	}
	// DataCoord counts the inputs' BM25 logs too (PreAllocateBinlogIDs), though the plan omits them.
	bm25Logs := int64(0)
	for _, fbs := range col.BM25Logs {
		for _, fb := range fbs {
			bm25Logs += int64(len(fb.Binlogs))
		}
	}
	logs := (countLogs(segs) + bm25Logs) * idExpansion
	return &datapb.CompactionPlan{
		PlanID:                 planIDMix,
		SegmentBinlogs:         segs,
		StartTime:              int64(tso.FromTime(c.Now)),
		Type:                   datapb.CompactionType_MixCompaction,
		Channel:                c.Channel,
		CollectionTtl:          c.TTL.Nanoseconds(),
		TotalRows:              col.Expected.Rows,
		Schema:                 proto.Clone(col.Schema).(*schemapb.CollectionSchema),
		BeginLogID:             outLogBase,
		PreAllocatedSegmentIDs: &datapb.IDRange{Begin: outSegmentBase, End: outSegmentBase + 11*idExpansion},
		PreAllocatedLogIDs:     &datapb.IDRange{Begin: outLogBase, End: outLogBase + logs},
		MaxSize:                c.MaxSegmentSize,
		SlotUsage:              4,
		JsonParams:             jsonParams(col.Segments),
	}
}

func (g *generator) l0Plan(col *Collection) *datapb.CompactionPlan {
	c := g.cfg
	var segs []*datapb.CompactionSegmentBinlogs
	for _, s := range col.L0 {
		segs = append(segs, proto.Clone(s).(*datapb.CompactionSegmentBinlogs))
	}
	for _, s := range col.Segments {
		segs = append(segs, &datapb.CompactionSegmentBinlogs{
			SegmentID: s.SegmentID, CollectionID: s.CollectionID, PartitionID: s.PartitionID,
			InsertChannel: s.InsertChannel, Level: s.Level, IsSorted: s.IsSorted,
			StorageVersion:      s.StorageVersion,
			Field2StatslogPaths: cloneFieldBinlogs(s.Field2StatslogPaths),
		})
	}
	begin := outLogBase + 50_000_000
	return &datapb.CompactionPlan{
		PlanID:             planIDL0,
		SegmentBinlogs:     segs,
		StartTime:          int64(tso.FromTime(c.Now)),
		Type:               datapb.CompactionType_Level0DeleteCompaction,
		Channel:            c.Channel,
		CollectionTtl:      c.TTL.Nanoseconds(),
		Schema:             proto.Clone(col.Schema).(*schemapb.CollectionSchema),
		BeginLogID:         begin,
		PreAllocatedLogIDs: &datapb.IDRange{Begin: begin, End: begin + int64(len(col.Segments))*idExpansion},
		SlotUsage:          8,
		JsonParams:         jsonParams(col.Segments),
	}
}

func cloneFieldBinlogs(in []*datapb.FieldBinlog) []*datapb.FieldBinlog {
	out := make([]*datapb.FieldBinlog, len(in))
	for i, fb := range in {
		out[i] = proto.Clone(fb).(*datapb.FieldBinlog)
	}
	return out
}

// clearLogPaths empties every Binlog.log_path, leaving logID: the compressed form DataCoord
// stores and sends.
func clearLogPaths(p *datapb.CompactionPlan) {
	for _, s := range p.SegmentBinlogs {
		for _, group := range [][]*datapb.FieldBinlog{s.FieldBinlogs, s.Deltalogs, s.Field2StatslogPaths} {
			for _, fb := range group {
				for _, b := range fb.Binlogs {
					b.LogPath = ""
				}
			}
		}
	}
}
