package segwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
)

// DeltalogConfig says where WriteDeltalog writes an L0 compaction's
// deltalog for one target segment.
type DeltalogConfig struct {
	Store                                objstore.Store
	Root                                 string // Milvus root path, e.g. "files"
	CollectionID, PartitionID, SegmentID int64  // the target segment
	LogIDs                               *IDRange
	Timestamp                            uint64 // binlog header timestamp (plan start time) for deterministic bytes
}

// WriteDeltalog writes d as one JSON-format deltalog (deltalog.Write
// FormatJSON, as Milvus's L0 compaction does) with one log ID from
// cfg.LogIDs under milvuspath.DeltaLog, and returns its metadata:
// FieldBinlog{FieldID 0, Binlogs: [{EntriesNum, TimestampFrom/To = min/max
// delete ts, LogPath, LogSize, LogID, MemorySize}]}. The object is written
// with Create, so an object already under the key is left alone and the
// call fails. The key is returned when the call created the object (err is
// nil) or may have (err wraps objstore.ErrUnknownOutcome), else it is "":
// the caller deletes only what it created.
func WriteDeltalog(ctx context.Context, cfg DeltalogConfig, d *deltalog.Deletes) (*datapb.FieldBinlog, string, error) {
	if cfg.Store == nil {
		return nil, "", fmt.Errorf("segwrite: deltalog of segment %d: no store", cfg.SegmentID)
	}
	if d == nil || d.Len() == 0 {
		return nil, "", fmt.Errorf("segwrite: deltalog of segment %d: no deletes", cfg.SegmentID)
	}
	logID, err := cfg.LogIDs.Take(1)
	if err != nil {
		return nil, "", fmt.Errorf("segwrite: deltalog of segment %d: %w", cfg.SegmentID, err)
	}
	key := milvuspath.DeltaLog(cfg.Root, cfg.CollectionID, cfg.PartitionID, cfg.SegmentID, logID)
	var buf bytes.Buffer
	meta := deltalog.Meta{CollectionID: cfg.CollectionID, PartitionID: cfg.PartitionID, SegmentID: cfg.SegmentID, Timestamp: cfg.Timestamp}
	w, err := deltalog.Write(&buf, meta, d, deltalog.FormatJSON)
	if err != nil {
		return nil, "", fmt.Errorf("segwrite: deltalog %q: %w", key, err)
	}
	if err := cfg.Store.Create(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		if !errors.Is(err, objstore.ErrUnknownOutcome) {
			key = ""
		}
		return nil, key, fmt.Errorf("segwrite: deltalog of segment %d: %w", cfg.SegmentID, err)
	}
	return &datapb.FieldBinlog{FieldID: 0, Binlogs: []*datapb.Binlog{{
		EntriesNum: w.Rows, TimestampFrom: w.MinTS, TimestampTo: w.MaxTS,
		LogPath: key, LogSize: w.Bytes, LogID: logID, MemorySize: w.MemorySize,
	}}}, key, nil
}
