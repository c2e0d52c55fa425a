package reference

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/tso"
)

// Defaults of the json_params keys Mix reads (milvus-formats.md §13).
const (
	DefaultUseMergeSort        = true
	DefaultMaxSegmentMergeSort = 30
)

// MixResult is the outcome of a mix compaction: the output segments in
// order, each with its rows in order.
type MixResult struct {
	// Fields are plan.schema's fields; Row.Values follows their order.
	Fields []*schemapb.FieldSchema
	// Outputs are the output segments with at least one row.
	Outputs []*Output
	// Sorted reports merge-sort order (Milvus flags such outputs is_sorted).
	Sorted bool
	// Placeholder reports the single zero-row segment Milvus emits when no
	// row survives. Mix sets it exactly when Outputs is empty; ReadMix sets
	// it when the result holds such a segment.
	Placeholder bool
	Counts      Counts
}

// Counts are a mix compaction's row counters. ReadMix cannot know Input,
// Deleted and Expired and sets them to -1; a test that has the pipeline's
// own counters fills them in before calling DiffMix, which skips negative
// counters.
type Counts struct {
	Input   int64 // rows read from the inputs
	Deleted int64 // rows removed by the inputs' deltalogs (checked first)
	Expired int64 // rows removed by the collection TTL
	Kept    int64 // rows written
}

// Output is one output segment.
type Output struct {
	// SegmentID is the produced segment's ID (ReadMix); 0 from Mix, which
	// does not allocate IDs.
	SegmentID int64
	Rows      []Row
	// Size is the sum of the rows' RowSize.
	Size int64
}

// Row is one output row.
type Row struct {
	// Segment and Offset locate the row in the plan's inputs: input segment
	// ID and row offset within it. ReadMix cannot know them and sets
	// Segment 0 and Offset -1.
	Segment int64
	Offset  int64
	PK      any    // int64 or string
	TS      uint64 // the Timestamp field (ID 1)
	// Values holds one canonical value per field of MixResult.Fields (see
	// the package documentation, "Values").
	Values []any
}

// Mix computes the expected result of a mix compaction plan over the
// segments stored in store under root. plan is not modified.
func Mix(ctx context.Context, store objstore.Store, root string, plan *datapb.CompactionPlan) (*MixResult, error) {
	if plan == nil {
		return nil, errors.New("reference mix: nil plan")
	}
	plan = proto.Clone(plan).(*datapb.CompactionPlan)
	fail := func(err error) (*MixResult, error) {
		return nil, fmt.Errorf("reference mix: plan %d: %w", plan.GetPlanID(), err)
	}
	if len(plan.GetSegmentBinlogs()) == 0 {
		return fail(errors.New("no input segments"))
	}
	if plan.GetMaxSize() <= 0 {
		return fail(fmt.Errorf("max_size is %d, must be > 0", plan.GetMaxSize()))
	}
	if !hasInsertBinlogs(plan) {
		return fail(errors.New("illegal compaction plan: no input segment has insert binlogs"))
	}
	if err := milvuspath.FillPlan(root, plan); err != nil {
		return fail(err)
	}
	schema := plan.GetSchema()
	pkf, pki, err := pkField(schema)
	if err != nil {
		return fail(err)
	}
	tsi := fieldIndex(schema, 1)
	if tsi < 0 || schema.GetFields()[tsi].GetDataType() != schemapb.DataType_Int64 {
		return fail(errors.New("schema has no Int64 Timestamp field (ID 1)"))
	}
	useMergeSort, maxMergeSort, err := mergeParams(plan.GetJsonParams())
	if err != nil {
		return fail(err)
	}
	sizer, err := newRowSizer(schema.GetFields())
	if err != nil {
		return fail(err)
	}

	res := &MixResult{Fields: schema.GetFields()}
	nowMs := tso.Physical(uint64(plan.GetStartTime()))
	ttlMs := plan.GetCollectionTtl() / 1_000_000
	inputs := make([][]Row, len(plan.GetSegmentBinlogs()))
	allSorted := true
	for k, seg := range plan.GetSegmentBinlogs() {
		allSorted = allSorted && seg.GetIsSorted()
		id := seg.GetSegmentID()
		tbl, err := readSegment(ctx, store, id, seg.GetStorageVersion(), schema.GetFields(), seg.GetFieldBinlogs())
		if err != nil {
			return fail(err)
		}
		dels, err := readDeletes(ctx, store, id, pkf.GetDataType(), seg.GetDeltalogs())
		if err != nil {
			return fail(err)
		}
		deleteTS := map[any]uint64{} // pk -> largest delete ts
		for _, d := range dels {
			if old, ok := deleteTS[d.PK]; !ok || d.TS > old {
				deleteTS[d.PK] = d.TS
			}
		}
		for r := range tbl.rows {
			pk, tsv := tbl.cols[pki][r], tbl.cols[tsi][r]
			if pk == nil || tsv == nil {
				return fail(fmt.Errorf("segment %d row %d: null primary key or timestamp", id, r))
			}
			ts := uint64(tsv.(int64))
			res.Counts.Input++
			if d, ok := deleteTS[pk]; ok && ts < d {
				res.Counts.Deleted++
				continue
			}
			if plan.GetCollectionTtl() > 0 && ttlMs <= nowMs-tso.Physical(ts) {
				res.Counts.Expired++
				continue
			}
			vals := make([]any, len(tbl.fields))
			for i := range tbl.fields {
				vals[i] = tbl.cols[i][r]
			}
			inputs[k] = append(inputs[k], Row{Segment: id, Offset: int64(r), PK: pk, TS: ts, Values: vals})
		}
	}

	n := len(inputs)
	res.Sorted = useMergeSort && allSorted && n >= 2 && n <= maxMergeSort
	var order []Row
	if res.Sorted {
		order = kWayMerge(inputs)
	} else {
		for _, in := range inputs {
			order = append(order, in...)
		}
	}

	var cur *Output
	for _, row := range order {
		if cur == nil || cur.Size >= plan.GetMaxSize() {
			cur = &Output{}
			res.Outputs = append(res.Outputs, cur)
		}
		cur.Rows = append(cur.Rows, row)
		cur.Size += sizer.size(row.Values)
	}
	res.Counts.Kept = int64(len(order))
	res.Placeholder = len(res.Outputs) == 0
	return res, nil
}

// hasInsertBinlogs reports whether some input has an insert binlog; Milvus
// 2.6 refuses a plan whose inputs have none (§4.1).
func hasInsertBinlogs(plan *datapb.CompactionPlan) bool {
	for _, seg := range plan.GetSegmentBinlogs() {
		for _, fb := range seg.GetFieldBinlogs() {
			if len(fb.GetBinlogs()) > 0 {
				return true
			}
		}
	}
	return false
}

// kWayMerge merges the inputs' rows by pk: at each step the smallest head
// wins, ties going to the lower input index (rows within an input keep
// their order).
func kWayMerge(inputs [][]Row) []Row {
	var out []Row
	heads := make([]int, len(inputs))
	for {
		best := -1
		for k, in := range inputs {
			if heads[k] == len(in) {
				continue
			}
			if best < 0 || comparePK(in[heads[k]].PK, inputs[best][heads[best]].PK) < 0 {
				best = k
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, inputs[best][heads[best]])
		heads[best]++
	}
}

// comparePK orders two pks of the same type: int64 numerically, string
// byte-wise.
func comparePK(a, b any) int {
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case string:
		return strings.Compare(x, b.(string))
	}
	panic(fmt.Sprintf("reference: pk of type %T", a))
}

// mergeParams reads use_merge_sort and max_segment_merge_sort from the
// plan's json_params (booleans and numbers, or their string forms).
func mergeParams(s string) (use bool, limit int, err error) {
	use, limit = DefaultUseMergeSort, DefaultMaxSegmentMergeSort
	if strings.TrimSpace(s) == "" {
		return use, limit, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return false, 0, fmt.Errorf("json_params is not a JSON object: %w", err)
	}
	if v, ok := m["use_merge_sort"]; ok {
		switch x := v.(type) {
		case bool:
			use = x
		case string:
			if use, err = strconv.ParseBool(x); err != nil {
				return false, 0, fmt.Errorf("json_params use_merge_sort %q is not a boolean", x)
			}
		default:
			return false, 0, fmt.Errorf("json_params use_merge_sort is %T, want a boolean", v)
		}
	}
	if v, ok := m["max_segment_merge_sort"]; ok {
		switch x := v.(type) {
		case float64:
			limit = int(x)
		case string:
			if limit, err = strconv.Atoi(x); err != nil {
				return false, 0, fmt.Errorf("json_params max_segment_merge_sort %q is not an integer", x)
			}
		default:
			return false, 0, fmt.Errorf("json_params max_segment_merge_sort is %T, want a number", v)
		}
	}
	return use, limit, nil
}

// rowSizer computes RowSize for one schema.
type rowSizer struct {
	fixed    int64 // sum of the fixed-width fields' widths
	variable []int // indexes of variable-length fields
}

func newRowSizer(fields []*schemapb.FieldSchema) (*rowSizer, error) {
	rs := &rowSizer{}
	for i, f := range fields {
		w, err := fieldWidth(f)
		if err != nil {
			return nil, err
		}
		if w < 0 {
			rs.variable = append(rs.variable, i)
		} else {
			rs.fixed += w
		}
	}
	return rs, nil
}

func (rs *rowSizer) size(values []any) int64 {
	n := rs.fixed
	for _, i := range rs.variable {
		n += 4
		switch v := values[i].(type) {
		case string:
			n += int64(len(v))
		case []byte:
			n += int64(len(v))
		}
	}
	return n
}

// fieldWidth is a field's per-row size when fixed, or -1 for variable-length
// fields.
func fieldWidth(f *schemapb.FieldSchema) (int64, error) {
	switch f.GetDataType() {
	case schemapb.DataType_Bool, schemapb.DataType_Int8:
		return 1, nil
	case schemapb.DataType_Int16:
		return 2, nil
	case schemapb.DataType_Int32, schemapb.DataType_Float:
		return 4, nil
	case schemapb.DataType_Int64, schemapb.DataType_Double, schemapb.DataType_Timestamptz:
		return 8, nil
	case schemapb.DataType_VarChar, schemapb.DataType_String, schemapb.DataType_Text,
		schemapb.DataType_JSON, schemapb.DataType_Array, schemapb.DataType_SparseFloatVector:
		return -1, nil
	case schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector,
		schemapb.DataType_Int8Vector, schemapb.DataType_BinaryVector:
		dim, err := binlog.Dim(f)
		if err != nil {
			return 0, err
		}
		switch f.GetDataType() {
		case schemapb.DataType_FloatVector:
			return int64(dim) * 4, nil
		case schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
			return int64(dim) * 2, nil
		case schemapb.DataType_BinaryVector:
			return int64(dim+7) / 8, nil
		}
		return int64(dim), nil
	}
	return 0, fmt.Errorf("field %d (%s): type %s has no row size", f.GetFieldID(), f.GetName(), f.GetDataType())
}

// RowSize returns the size in bytes the reference, and the pipeline,
// account for one row when splitting outputs by plan.max_size: values holds
// one canonical value per field of fields (nil for null). See the package
// documentation for the definition.
func RowSize(fields []*schemapb.FieldSchema, values []any) (int64, error) {
	if len(values) != len(fields) {
		return 0, fmt.Errorf("reference: %d values for %d fields", len(values), len(fields))
	}
	rs, err := newRowSizer(fields)
	if err != nil {
		return 0, fmt.Errorf("reference: %w", err)
	}
	return rs.size(values), nil
}
