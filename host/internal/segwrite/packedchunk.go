package segwrite

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/packed"
)

// storageVersion is the CompactionSegment.storage_version of the outputs,
// as Milvus's Go code numbers them (v1 is 0, never 1).
func (w *Writer) storageVersion() int64 {
	if w.cfg.StorageVersion == packed.SegmentV2 {
		return packed.SegmentV2
	}
	return packed.SegmentV1
}

// initSplit checks the schema against the v2 split policy and, unless the
// split depends on each output's data, computes the one split all outputs
// use.
func (w *Writer) initSplit() error {
	if n := len(w.cfg.Schema.GetStructArrayFields()); n > 0 {
		return fmt.Errorf("segwrite: storage v2: the schema has %d struct array fields, which this writer does not support", n)
	}
	w.policy = packed.DefaultSplitPolicy()
	if w.cfg.SplitPolicy != nil {
		w.policy = *w.cfg.SplitPolicy
	}
	if w.policy.SplitByAvgSize && w.policy.AvgSizeThreshold <= 0 {
		w.policy.AvgSizeThreshold = packed.DefaultSplitPolicy().AvgSizeThreshold
	}
	// Even an average-size split is checked here, without averages, so a
	// schema that cannot be split fails before anything is written.
	groups, err := packed.SplitGroups(w.cfg.Schema, w.policy, nil)
	if err != nil {
		return fmt.Errorf("segwrite: storage v2 column groups: %w", err)
	}
	if !w.policy.SplitByAvgSize {
		w.groups = groups
	}
	return nil
}

// split returns the column groups of an output whose first rows are
// [off, off+n) of cols: nil for v1, the writer's split for v2, or one
// computed from those rows' average bytes per field when the policy splits
// by average size.
func (w *Writer) split(cols map[int64]arrow.Array, off, n int) ([]packed.Group, error) {
	if w.cfg.StorageVersion != packed.SegmentV2 {
		return nil, nil
	}
	if !w.policy.SplitByAvgSize {
		return w.groups, nil
	}
	if n <= 0 {
		return nil, errors.New("storage v2: no rows to average field sizes over")
	}
	avg := make(map[int64]int64, len(w.fields))
	for _, f := range w.fields {
		s := array.NewSlice(cols[f.GetFieldID()], int64(off), int64(off+n))
		avg[f.GetFieldID()] = binlog.MemorySize(s) / int64(n)
		s.Release()
	}
	groups, err := packed.SplitGroups(w.cfg.Schema, w.policy, avg)
	if err != nil {
		return nil, fmt.Errorf("storage v2 column groups: %w", err)
	}
	return groups, nil
}

// setGroups makes the output write one file per group per chunk.
func (o *output) setGroups(w *Writer, groups []packed.Group) {
	index := make(map[int64]int, len(w.fields))
	for i, f := range w.fields {
		index[f.GetFieldID()] = i
	}
	o.groups = groups
	for _, g := range groups {
		cols := make([]int, len(g.Fields))
		for j, id := range g.Fields {
			cols[j] = index[id]
		}
		o.cols = append(o.cols, cols)
		o.insert = append(o.insert, &datapb.FieldBinlog{FieldID: g.ID, ChildFields: slices.Clone(g.Fields)})
	}
}

// encodeGroup encodes group i's file of the chunk: the group's pieces,
// written piece by piece (every field has the same pieces), so row groups
// are cut by each piece's average row size as milvus-storage cuts them by
// each record batch's. memory_size is the group's columns' Arrow bytes of
// the rows written (binlog.MemorySizeChunks).
func (o *output) encodeGroup(w *Writer, i int) (encoded, error) {
	g, cols := o.groups[i], o.cols[i]
	var mem int64
	for _, c := range cols {
		mem += binlog.MemorySizeChunks(o.pieces[c])
	}
	// Compressed vectors are about their raw size; a little more covers
	// the footer and page headers of an incompressible group.
	pw, err := packed.NewWriter(o.groups, g.ID, w.fields, packed.WriterOptions{RowGroupBytes: w.cfg.RowGroupBytes,
		VectorDictionary: w.cfg.VectorDictionary, SizeHint: mem + mem/64 + 64<<10})
	if err != nil {
		return encoded{}, err
	}
	batch := make([]arrow.Array, len(cols))
	for j := range o.pieces[cols[0]] {
		for k, c := range cols {
			batch[k] = o.pieces[c][j]
		}
		if err := pw.Write(batch); err != nil {
			pw.Finish()
			return encoded{}, err
		}
	}
	data, info, err := pw.Finish()
	if err != nil {
		return encoded{}, err
	}
	return encoded{r: bytes.NewReader(data), size: int64(len(data)), rows: info.Rows, mem: mem}, nil
}
