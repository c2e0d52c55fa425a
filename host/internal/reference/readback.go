package reference

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/statslog"
)

// ReadMix reads the output segments of a produced mix compaction result
// back from store into the form Mix returns (every field, nulls included),
// so that DiffMix can compare them. plan is the plan that produced res: it
// supplies the schema, and the collection and partition for insert log paths
// given only as log IDs.
//
// Besides decoding, ReadMix checks what a compaction result must satisfy and
// returns an error naming the segment and object otherwise:
//   - a zero-row segment without logs (the placeholder) is the only segment;
//   - every output has insert logs for every schema field, the same number
//     of files per field, and entries_num and num_of_rows matching the data;
//   - every output has a pk stats log whose filter and range admit each of
//     its pks, with the range equal to the actual smallest and largest pk;
//   - all outputs agree on is_sorted.
//
// Counts.Input, Deleted and Expired are set to -1 (unknown); Kept is the
// number of rows read.
func ReadMix(ctx context.Context, store objstore.Store, root string, plan *datapb.CompactionPlan, res *datapb.CompactionPlanResult) (*MixResult, error) {
	if plan == nil || res == nil {
		return nil, errors.New("reference read mix: nil plan or result")
	}
	fail := func(err error) (*MixResult, error) {
		return nil, fmt.Errorf("reference read mix: plan %d result: %w", plan.GetPlanID(), err)
	}
	schema := plan.GetSchema()
	pkf, pki, err := pkField(schema)
	if err != nil {
		return fail(err)
	}
	tsi := fieldIndex(schema, 1)
	if tsi < 0 {
		return fail(errors.New("schema has no Timestamp field (ID 1)"))
	}
	sizer, err := newRowSizer(schema.GetFields())
	if err != nil {
		return fail(err)
	}
	var coll, part int64
	if in := plan.GetSegmentBinlogs(); len(in) > 0 {
		coll, part = in[0].GetCollectionID(), in[0].GetPartitionID()
	}
	out := &MixResult{Fields: schema.GetFields(), Counts: Counts{Input: -1, Deleted: -1, Expired: -1}}
	segs := res.GetSegments()
	for i, seg := range segs {
		id := seg.GetSegmentID()
		if seg.GetNumOfRows() == 0 && len(seg.GetInsertLogs()) == 0 {
			if len(segs) != 1 {
				return fail(fmt.Errorf("segment %d is an empty placeholder but the result has %d segments", id, len(segs)))
			}
			out.Placeholder = true
			continue
		}
		if i > 0 && seg.GetIsSorted() != segs[0].GetIsSorted() {
			return fail(fmt.Errorf("segment %d is_sorted=%v but segment %d is_sorted=%v",
				id, seg.GetIsSorted(), segs[0].GetSegmentID(), segs[0].GetIsSorted()))
		}
		out.Sorted = seg.GetIsSorted()
		o, err := readOutput(ctx, store, root, coll, part, schema, seg)
		if err != nil {
			return fail(err)
		}
		for _, vals := range o {
			row := Row{Offset: -1, PK: vals[pki], TS: uint64(vals[tsi].(int64)), Values: vals}
			if out.Outputs == nil || out.Outputs[len(out.Outputs)-1].SegmentID != id {
				out.Outputs = append(out.Outputs, &Output{SegmentID: id})
			}
			cur := out.Outputs[len(out.Outputs)-1]
			cur.Rows = append(cur.Rows, row)
			cur.Size += sizer.size(vals)
		}
		if err := checkOutputStats(ctx, store, root, coll, part, seg, pkf, o, pki); err != nil {
			return fail(err)
		}
		out.Counts.Kept += int64(len(o))
	}
	return out, nil
}

// readOutput reads one output segment's rows (row-major) and checks its
// insert log metadata.
func readOutput(ctx context.Context, store objstore.Store, root string, coll, part int64,
	schema *schemapb.CollectionSchema, seg *datapb.CompactionSegment) ([][]any, error) {
	id := seg.GetSegmentID()
	fbs := cloneFieldBinlogs(seg.GetInsertLogs())
	if err := milvuspath.FillPaths(root, milvuspath.KindInsert, coll, part, id, fbs); err != nil {
		return nil, err
	}
	if err := checkOutputLogs(seg, schema, fbs); err != nil {
		return nil, err
	}
	tbl, err := readSegment(ctx, store, id, seg.GetStorageVersion(), schema.GetFields(), fbs)
	if err != nil {
		return nil, err
	}
	if int64(tbl.rows) != seg.GetNumOfRows() {
		return nil, fmt.Errorf("output segment %d: num_of_rows %d, insert logs hold %d rows", id, seg.GetNumOfRows(), tbl.rows)
	}
	rows := make([][]any, tbl.rows)
	for r := range rows {
		vals := make([]any, len(tbl.fields))
		for i := range tbl.fields {
			vals[i] = tbl.cols[i][r]
		}
		if vals[fieldIndex(schema, 1)] == nil {
			return nil, fmt.Errorf("output segment %d row %d: null timestamp", id, r)
		}
		rows[r] = vals
	}
	return rows, nil
}

// checkOutputStats checks that an output's pk stats admit every one of its
// pks and that their range is exactly [min pk, max pk].
func checkOutputStats(ctx context.Context, store objstore.Store, root string, coll, part int64,
	seg *datapb.CompactionSegment, pkf *schemapb.FieldSchema, rows [][]any, pki int) error {
	id := seg.GetSegmentID()
	fbs := cloneFieldBinlogs(seg.GetField2StatslogPaths())
	if err := milvuspath.FillPaths(root, milvuspath.KindStats, coll, part, id, fbs); err != nil {
		return err
	}
	var stats []*statslog.Stats
	var keys []string
	for _, fb := range fbs {
		if fb.GetFieldID() != pkf.GetFieldID() {
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
	for _, k := range keys {
		data, err := readObject(ctx, store, k)
		if err != nil {
			return fmt.Errorf("output segment %d: %w", id, err)
		}
		list, err := statslog.Decode(k, data)
		if err != nil {
			return fmt.Errorf("output segment %d: %w", id, err)
		}
		stats = append(stats, list...)
	}
	if len(stats) == 0 {
		return fmt.Errorf("output segment %d has no pk stats log for field %d", id, pkf.GetFieldID())
	}
	var lo, hi any
	for r, vals := range rows {
		pk := vals[pki]
		if pk == nil {
			return fmt.Errorf("output segment %d row %d: null primary key", id, r)
		}
		if !hits(stats, pk) {
			return fmt.Errorf("output segment %d: pk stats %v reject row %d's pk %s", id, keys, r, formatValue(pk))
		}
		if lo == nil || comparePK(pk, lo) < 0 {
			lo = pk
		}
		if hi == nil || comparePK(pk, hi) > 0 {
			hi = pk
		}
	}
	if len(stats) == 1 && stats[0].HasRange && lo != nil {
		s := stats[0]
		gotLo, gotHi := any(s.Min.Int), any(s.Max.Int)
		if pkf.GetDataType() == schemapb.DataType_VarChar {
			gotLo, gotHi = s.Min.Str, s.Max.Str
		}
		if gotLo != lo || gotHi != hi {
			return fmt.Errorf("output segment %d: pk stats %v range [%s, %s], rows span [%s, %s]",
				id, keys, formatValue(gotLo), formatValue(gotHi), formatValue(lo), formatValue(hi))
		}
	}
	return nil
}

// checkOutputLogs checks an output's insert log metadata: every schema
// field in exactly one FieldBinlog (v1: its fieldID; v2: a column group's
// child_fields, the group's directory in every key), every FieldBinlog
// with as many files, and each summing entries_num to num_of_rows.
func checkOutputLogs(seg *datapb.CompactionSegment, schema *schemapb.CollectionSchema, fbs []*datapb.FieldBinlog) error {
	id := seg.GetSegmentID()
	v2 := seg.GetStorageVersion() == storageV2
	if v := seg.GetStorageVersion(); v != 0 && !v2 {
		return fmt.Errorf("output segment %d has storage_version %d, want 0 or 2", id, v)
	}
	holder := map[int64]int64{}
	files := -1
	for _, fb := range fbs {
		covers := []int64{fb.GetFieldID()}
		if v2 {
			covers = fb.GetChildFields()
			if len(covers) == 0 {
				return fmt.Errorf("output segment %d: column group %d has no child_fields", id, fb.GetFieldID())
			}
			if g := fb.GetFieldID(); g >= 100 && !slices.Equal(covers, []int64{g}) {
				return fmt.Errorf("output segment %d: column group %d holds fields %v; a group ID of 100 or more must be its one field's ID", id, g, covers)
			}
		} else if len(fb.GetChildFields()) > 0 {
			return fmt.Errorf("output segment %d: storage v1 field %d has child_fields %v", id, fb.GetFieldID(), fb.GetChildFields())
		}
		for _, f := range covers {
			if prev, dup := holder[f]; dup {
				return fmt.Errorf("output segment %d: field %d is in insert logs %d and %d", id, f, prev, fb.GetFieldID())
			}
			holder[f] = fb.GetFieldID()
		}
		if files >= 0 && len(fb.GetBinlogs()) != files {
			return fmt.Errorf("output segment %d: insert logs %d have %d files, others %d", id, fb.GetFieldID(), len(fb.GetBinlogs()), files)
		}
		files = len(fb.GetBinlogs())
		var entries int64
		for _, b := range fb.GetBinlogs() {
			entries += b.GetEntriesNum()
			if dir := path.Base(path.Dir(b.GetLogPath())); v2 && dir != strconv.FormatInt(fb.GetFieldID(), 10) {
				return fmt.Errorf("output segment %d: column group %d file %q is not under its group's directory", id, fb.GetFieldID(), b.GetLogPath())
			}
		}
		if entries != seg.GetNumOfRows() {
			return fmt.Errorf("output segment %d: insert logs %d sum entries_num %d, num_of_rows is %d", id, fb.GetFieldID(), entries, seg.GetNumOfRows())
		}
	}
	for _, f := range schema.GetFields() {
		if _, ok := holder[f.GetFieldID()]; !ok {
			return fmt.Errorf("output segment %d has no insert log for field %d (%s)", id, f.GetFieldID(), f.GetName())
		}
	}
	if len(holder) != len(schema.GetFields()) {
		return fmt.Errorf("output segment %d: insert logs hold %d fields, the schema has %d", id, len(holder), len(schema.GetFields()))
	}
	return nil
}
