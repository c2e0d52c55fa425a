package gen

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/packed"
)

// writeChunkV2 writes one storage-v2 Parquet file per column group, as Milvus's packed writer
// does for one chunk (milvus-storage-v2.md §2, §5): log IDs ascending in group order, the key's
// field slot holding the group ID, and every group's Binlog carrying the chunk's rows and its
// Timestamp range. fbs are the segment's FieldBinlogs, one per group in g.groups order.
func (g *generator) writeChunkV2(seg *segmentRows, lo, hi int, cols map[int64]arrow.Array, fbs []*datapb.FieldBinlog) error {
	c := g.cfg
	fields := packed.AllFields(g.schema)
	tsFrom, tsTo := minMax(seg.ts[lo:hi])
	for i, grp := range g.groups {
		logID := g.logID()
		key := milvuspath.InsertLog(c.RootPath, c.CollectionID, c.PartitionID, seg.id, grp.ID, logID)
		// Inputs as a Milvus DataNode writes them: dictionary on every column.
		w, err := packed.NewWriter(g.groups, grp.ID, fields, packed.WriterOptions{VectorDictionary: true})
		if err != nil {
			return fmt.Errorf("gen: %s: %w", key, err)
		}
		groupCols := make([]arrow.Array, len(grp.Fields))
		var mem int64
		for j, id := range grp.Fields {
			groupCols[j] = cols[id]
			// Binlog.memory_size of a v2 file is the Arrow buffers' full size (§5).
			mem += int64(cols[id].Data().SizeInBytes())
		}
		if err := w.Write(groupCols); err != nil {
			w.Finish()
			return fmt.Errorf("gen: %s: %w", key, err)
		}
		data, _, err := w.Finish()
		if err != nil {
			return fmt.Errorf("gen: %s: %w", key, err)
		}
		if err := g.put(key, data); err != nil {
			return err
		}
		fbs[i].Binlogs = append(fbs[i].Binlogs, &datapb.Binlog{
			EntriesNum: int64(hi - lo), TimestampFrom: tsFrom, TimestampTo: tsTo,
			LogPath: key, LogSize: int64(len(data)), LogID: logID, MemorySize: mem,
		})
	}
	return nil
}
