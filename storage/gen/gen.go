package gen

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
	"github.com/compacthost/compacthost/storage/statslog"
	"github.com/compacthost/compacthost/storage/tso"
)

// Collection is what Generate wrote, with the plans that compact it and the answers a correct
// compaction must give.
type Collection struct {
	Config   Config
	Schema   *schemapb.CollectionSchema
	Segments []*datapb.CompactionSegmentBinlogs // the L1 segments, with insert, stats and delta logs
	L0       []*datapb.CompactionSegmentBinlogs // the L0 segments (deltalogs only)
	MixPlan  *datapb.CompactionPlan             // merges every L1 segment
	L0Plan   *datapb.CompactionPlan             // applies the L0 segments to every L1 segment; nil without L0 segments
	// BM25Logs maps an L1 segment ID to its BM25 stats logs, one FieldBinlog per BM25 output
	// field (Config.BM25). Milvus 2.6's CompactionSegmentBinlogs has no field for them (the
	// compactor recomputes BM25 stats from the rows), so the plans do not list them.
	BM25Logs map[int64][]*datapb.FieldBinlog
	Expected Expected

	// InputMemorySize is the sum of memory_size over every insert binlog: the uncompressed input.
	InputMemorySize int64
	// InputLogSize is the sum of log_size over every insert binlog: the bytes on storage.
	InputLogSize int64
}

// Expected is the exact outcome of the plans under Milvus's rules.
type Expected struct {
	Rows    int64 // input rows of the mix plan
	Deleted int64 // rows removed by deltalogs (checked first)
	Expired int64 // rows removed by the TTL among those not deleted
	Kept    int64 // Rows - Deleted - Expired

	// L0Hits maps a target segment ID to the number of L0 delete records whose primary key
	// exists in that segment. A compaction may route more records to a segment (bloom-filter
	// false positives), never fewer.
	L0Hits map[int64]int
}

// ID ranges the generator uses; far apart so plans and data never collide.
const (
	idBase          int64 = 450_000_000_000_000_000
	planIDMix             = idBase + 1
	planIDL0              = idBase + 2
	segmentIDBase         = idBase + 100
	l0SegmentIDBase       = idBase + 50_000
	logIDBase             = idBase + 1_000_000
	rowIDBase             = idBase + 10_000_000_000
	outSegmentBase        = idBase + 100_000_000
	outLogBase            = idBase + 200_000_000
	idExpansion           = 10_000 // DataCoord's preAllocateIDExpansionFactor
)

// Generate writes the collection described by cfg into store and returns its description and
// plans. The same cfg always produces the same bytes.
func Generate(ctx context.Context, store objstore.Store, cfg Config) (*Collection, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &generator{ctx: ctx, store: store, cfg: cfg, schema: Schema(cfg), nextLog: logIDBase,
		header: tso.FromTime(cfg.Now)}
	var err error
	if g.groups, err = packed.SplitGroups(g.schema, packed.DefaultSplitPolicy(), nil); err != nil {
		return nil, fmt.Errorf("gen: column groups: %w", err)
	}
	col := &Collection{Config: cfg, Schema: g.schema, Expected: Expected{L0Hits: map[int64]int{}}}

	segs := make([]*segmentRows, cfg.Segments)
	rowID := rowIDBase
	for s := range cfg.Segments {
		segs[s] = newSegmentRows(cfg, s, segmentIDBase+int64(s), rowID)
		rowID += int64(cfg.RowsPerSegment)
		meta, err := g.writeSegment(segs[s])
		if err != nil {
			return nil, err
		}
		col.Segments = append(col.Segments, meta)
		if cfg.BM25 {
			fb, err := g.writeBM25Stats(segs[s])
			if err != nil {
				return nil, err
			}
			if col.BM25Logs == nil {
				col.BM25Logs = map[int64][]*datapb.FieldBinlog{}
			}
			col.BM25Logs[meta.SegmentID] = []*datapb.FieldBinlog{fb}
		}
		for i := range segs[s].ts {
			col.Expected.Rows++
			switch {
			case segs[s].deleted[i]:
				col.Expected.Deleted++
			case segs[s].expired[i]:
				col.Expected.Expired++
			default:
				col.Expected.Kept++
			}
		}
	}
	for _, seg := range col.Segments {
		for _, fb := range seg.FieldBinlogs {
			for _, b := range fb.Binlogs {
				col.InputMemorySize += b.MemorySize
				col.InputLogSize += b.LogSize
			}
		}
	}
	if err := g.writeL0(col, segs); err != nil {
		return nil, err
	}
	col.MixPlan = g.mixPlan(col)
	if len(col.L0) > 0 {
		col.L0Plan = g.l0Plan(col)
	}
	if cfg.CompressPaths {
		for _, p := range []*datapb.CompactionPlan{col.MixPlan, col.L0Plan} {
			if p != nil {
				clearLogPaths(p)
			}
		}
	}
	return col, nil
}

type generator struct {
	ctx     context.Context
	store   objstore.Store
	cfg     Config
	schema  *schemapb.CollectionSchema
	nextLog int64
	header  uint64         // event header timestamp: when the "writer" ran
	groups  []packed.Group // Milvus's default column-group split of schema, for v2 segments
}

func (g *generator) logID() int64 {
	id := g.nextLog
	g.nextLog++
	return id
}

func (g *generator) put(key string, data []byte) error {
	if err := g.store.Put(g.ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("gen: write %s: %w", key, err)
	}
	return nil
}

// writeSegment writes the insert data (storage v1: one binlog per field per chunk; v2: one
// Parquet file per column group per chunk), the deltalog and the pk stats log of one L1 segment.
func (g *generator) writeSegment(seg *segmentRows) (*datapb.CompactionSegmentBinlogs, error) {
	c := g.cfg
	meta := &datapb.CompactionSegmentBinlogs{
		SegmentID: seg.id, CollectionID: c.CollectionID, PartitionID: c.PartitionID,
		InsertChannel: c.Channel, Level: datapb.SegmentLevel_L1, IsSorted: c.Sorted,
		StorageVersion: c.SegmentVersion(seg.index),
	}
	write := g.writeChunk
	if meta.StorageVersion == 2 {
		for _, grp := range g.groups {
			meta.FieldBinlogs = append(meta.FieldBinlogs, &datapb.FieldBinlog{FieldID: grp.ID, ChildFields: grp.Fields})
		}
		write = g.writeChunkV2
	} else {
		for _, f := range g.schema.Fields {
			meta.FieldBinlogs = append(meta.FieldBinlogs, &datapb.FieldBinlog{FieldID: f.FieldID})
		}
	}
	chunk := c.ChunkRows
	if chunk == 0 {
		chunk = c.RowsPerSegment
	}
	for lo := 0; lo < c.RowsPerSegment; lo += chunk {
		hi := min(lo+chunk, c.RowsPerSegment)
		if err := g.writeColumns(seg, lo, hi, meta.FieldBinlogs, write); err != nil {
			return nil, err
		}
	}

	pkStats, err := g.writeStats(seg)
	if err != nil {
		return nil, err
	}
	meta.Field2StatslogPaths = []*datapb.FieldBinlog{pkStats}

	if len(seg.deletes) > 0 {
		d := &deltalog.Deletes{PKType: c.PKType}
		for _, r := range seg.deletes {
			if err := g.appendDelete(d, r); err != nil {
				return nil, err
			}
		}
		b, err := g.writeDeltalog(seg.id, d)
		if err != nil {
			return nil, err
		}
		meta.Deltalogs = []*datapb.FieldBinlog{{FieldID: 0, Binlogs: []*datapb.Binlog{b}}}
	}
	return meta, nil
}

func (g *generator) appendDelete(d *deltalog.Deletes, r deleteRecord) error {
	if g.cfg.PKType == schemapb.DataType_VarChar {
		return d.AppendVarChar(varcharPK(r.pkNum), r.ts)
	}
	return d.AppendInt64(r.pkNum, r.ts)
}

// chunkWriter writes rows [lo, hi) of a segment, given as columns by field ID, and appends one
// Binlog to each of fbs (the segment's FieldBinlogs, in order).
type chunkWriter func(seg *segmentRows, lo, hi int, cols map[int64]arrow.Array, fbs []*datapb.FieldBinlog) error

func (g *generator) writeColumns(seg *segmentRows, lo, hi int, fbs []*datapb.FieldBinlog, write chunkWriter) error {
	cols, err := seg.columns(g.schema, g.cfg.Dim, lo, hi)
	if err != nil {
		return err
	}
	defer func() {
		for _, a := range cols {
			a.Release()
		}
	}()
	return write(seg, lo, hi, cols, fbs)
}

// writeChunk writes one storage-v1 insert binlog per field; fbs are in schema field order.
func (g *generator) writeChunk(seg *segmentRows, lo, hi int, cols map[int64]arrow.Array, fbs []*datapb.FieldBinlog) error {
	c := g.cfg
	tsFrom, tsTo := minMax(seg.ts[lo:hi])
	for i, f := range g.schema.Fields {
		logID := g.logID()
		key := milvuspath.InsertLog(c.RootPath, c.CollectionID, c.PartitionID, seg.id, f.FieldID, logID)
		var buf bytes.Buffer
		desc := binlog.Descriptor{Timestamp: g.header, CollectionID: c.CollectionID,
			PartitionID: c.PartitionID, SegmentID: seg.id, FieldID: f.FieldID, PayloadType: f.DataType}
		w, err := binlog.EncodeInsert(&buf, desc, f, cols[f.FieldID], binlog.WriterOptions{})
		if err != nil {
			return fmt.Errorf("gen: encode %s: %w", key, err)
		}
		if err := g.put(key, buf.Bytes()); err != nil {
			return err
		}
		fbs[i].Binlogs = append(fbs[i].Binlogs, &datapb.Binlog{
			EntriesNum: int64(hi - lo), TimestampFrom: tsFrom, TimestampTo: tsTo,
			LogPath: key, LogSize: int64(buf.Len()), LogID: logID, MemorySize: w.MemorySize,
		})
	}
	return nil
}

func (g *generator) writeStats(seg *segmentRows) (*datapb.FieldBinlog, error) {
	c := g.cfg
	b, err := statslog.NewBuilder(PKField, c.PKType, len(seg.pkNum))
	if err != nil {
		return nil, err
	}
	for _, pk := range seg.pkNum {
		if c.PKType == schemapb.DataType_VarChar {
			b.AddVarChar(varcharPK(pk))
		} else {
			b.AddInt64(pk)
		}
	}
	stats, err := b.Finish()
	if err != nil {
		return nil, err
	}
	data, err := statslog.Encode(stats)
	if err != nil {
		return nil, fmt.Errorf("gen: stats of segment %d: %w", seg.id, err)
	}
	logID := g.logID()
	key := milvuspath.StatsLog(c.RootPath, c.CollectionID, c.PartitionID, seg.id, PKField, logID)
	if err := g.put(key, data); err != nil {
		return nil, err
	}
	return &datapb.FieldBinlog{FieldID: PKField, Binlogs: []*datapb.Binlog{{
		EntriesNum: int64(len(seg.pkNum)), LogPath: key, LogSize: int64(len(data)),
		MemorySize: int64(len(data)), LogID: logID,
	}}}, nil
}

func (g *generator) writeDeltalog(segID int64, d *deltalog.Deletes) (*datapb.Binlog, error) {
	c := g.cfg
	logID := g.logID()
	key := milvuspath.DeltaLog(c.RootPath, c.CollectionID, c.PartitionID, segID, logID)
	var buf bytes.Buffer
	w, err := deltalog.Write(&buf, deltalog.Meta{CollectionID: c.CollectionID, PartitionID: c.PartitionID,
		SegmentID: segID, Timestamp: g.header}, d, deltalog.FormatJSON)
	if err != nil {
		return nil, fmt.Errorf("gen: encode %s: %w", key, err)
	}
	if err := g.put(key, buf.Bytes()); err != nil {
		return nil, err
	}
	return &datapb.Binlog{EntriesNum: int64(d.Len()), TimestampFrom: w.MinTS, TimestampTo: w.MaxTS,
		LogPath: key, LogSize: int64(buf.Len()), LogID: logID, MemorySize: w.MemorySize}, nil
}

func minMax(ts []uint64) (lo, hi uint64) {
	lo, hi = ts[0], ts[0]
	for _, t := range ts[1:] {
		lo, hi = min(lo, t), max(hi, t)
	}
	return lo, hi
}
