package segread

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// fileRef is one insert binlog of one field in one chunk.
type fileRef struct {
	key   string
	logID int64
	rows  int64 // entries_num from the metadata; 0 when unset
	size  int64 // log_size from the metadata; 0 when unknown
}

// chunk is the i-th file of every field (§9.6): files[f] is the file of
// schema field f, or nil when that field has no file for this chunk and is
// filled instead.
type chunk struct {
	index int
	rows  int64 // entries_num agreed by the files (those that set it); checked against every payload
	files []*fileRef
}

// logIDOf returns the binlog's logID, or the number its key ends with when
// the logID is unset.
func logIDOf(b *datapb.Binlog) (int64, error) {
	if b.GetLogID() > 0 {
		return b.GetLogID(), nil
	}
	id, err := strconv.ParseInt(path.Base(b.GetLogPath()), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("binlog %q has no logID and its key does not end in one", b.GetLogPath())
	}
	return id, nil
}

// planChunks aligns the insert binlogs of seg to the schema fields as
// Milvus's V1 reader does (milvus-formats.md §9.6, §7): every field's files
// sorted by logID, chunk i is the i-th file of every field, fields with
// fewer files aligned to the end. canFill reports whether a field may be
// synthesized where it has no file. FieldBinlogs of fields outside the schema
// are ignored (dropped fields).
func planChunks(segID int64, fields []*schemapb.FieldSchema, seg *datapb.CompactionSegmentBinlogs, canFill func(*schemapb.FieldSchema) error) ([]chunk, error) {
	byField := map[int64][]*fileRef{}
	for _, fb := range seg.GetFieldBinlogs() {
		for _, b := range fb.GetBinlogs() {
			if b == nil {
				return nil, fmt.Errorf("segread: segment %d field %d: nil binlog entry", segID, fb.GetFieldID())
			}
			id, err := logIDOf(b)
			if err != nil {
				return nil, fmt.Errorf("segread: segment %d field %d: %w", segID, fb.GetFieldID(), err)
			}
			if b.GetLogPath() == "" {
				return nil, fmt.Errorf("segread: segment %d field %d: binlog %d has no log_path (fill the plan's paths first)",
					segID, fb.GetFieldID(), id)
			}
			byField[fb.GetFieldID()] = append(byField[fb.GetFieldID()], &fileRef{
				key: b.GetLogPath(), logID: id, rows: b.GetEntriesNum(), size: b.GetLogSize()})
		}
	}
	n := 0
	for _, f := range fields {
		fs := byField[f.GetFieldID()]
		slices.SortStableFunc(fs, func(a, b *fileRef) int { return cmp.Compare(a.logID, b.logID) })
		n = max(n, len(fs))
	}
	chunks := make([]chunk, n)
	for i := range chunks {
		chunks[i] = chunk{index: i, files: make([]*fileRef, len(fields))}
	}
	for fi, f := range fields {
		fs := byField[f.GetFieldID()]
		if len(fs) < n {
			if err := canFill(f); err != nil {
				return nil, fmt.Errorf("segread: segment %d field %d (%s) has %d of %d binlog chunks: %w",
					segID, f.GetFieldID(), f.GetName(), len(fs), n, err)
			}
		}
		for j, fr := range fs {
			chunks[n-len(fs)+j].files[fi] = fr
		}
	}
	for ci := range chunks {
		c := &chunks[ci]
		var first *fileRef
		for _, fr := range c.files {
			if fr == nil || fr.rows <= 0 {
				continue
			}
			if first == nil {
				first, c.rows = fr, fr.rows
			} else if fr.rows != first.rows {
				return nil, fmt.Errorf("segread: segment %d chunk %d: binlog %q has entries_num %d but %q has %d",
					segID, ci, fr.key, fr.rows, first.key, first.rows)
			}
		}
		if first == nil {
			for _, fr := range c.files {
				if fr != nil {
					return nil, fmt.Errorf("segread: segment %d chunk %d: no binlog has a positive entries_num (e.g. %q)",
						segID, ci, fr.key)
				}
			}
		}
	}
	return chunks, nil
}
