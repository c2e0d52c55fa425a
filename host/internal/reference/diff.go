package reference

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDiffLines bounds a diff's length.
const maxDiffLines = 20

type diffBuf struct {
	lines []string
	more  int
}

func (d *diffBuf) add(format string, args ...any) {
	if len(d.lines) >= maxDiffLines {
		d.more++
		return
	}
	d.lines = append(d.lines, fmt.Sprintf(format, args...))
}

func (d *diffBuf) String() string {
	if d.more > 0 {
		d.lines = append(d.lines, fmt.Sprintf("... and %d more differences", d.more))
	}
	return strings.Join(d.lines, "\n")
}

// DiffMix describes the first differences between an expected and a
// produced mix result, one per line: counters (negative ones are unknown
// and skipped), the placeholder, sortedness, the fields, the number of
// outputs, each output's row count and, per output, the first differing row
// with every differing field. Output segment IDs and row sizes are not
// compared; a row's origin (segment, offset) only when both sides know it.
// It returns "" when the results agree.
func DiffMix(want, got *MixResult) string {
	d := &diffBuf{}
	for _, c := range []struct {
		name string
		w, g int64
	}{
		{"input rows", want.Counts.Input, got.Counts.Input},
		{"deleted rows", want.Counts.Deleted, got.Counts.Deleted},
		{"expired rows", want.Counts.Expired, got.Counts.Expired},
		{"kept rows", want.Counts.Kept, got.Counts.Kept},
	} {
		if c.w >= 0 && c.g >= 0 && c.w != c.g {
			d.add("%s: want %d, got %d", c.name, c.w, c.g)
		}
	}
	if want.Placeholder != got.Placeholder {
		d.add("placeholder segment: want %v, got %v", want.Placeholder, got.Placeholder)
	}
	if len(want.Outputs) > 0 && len(got.Outputs) > 0 && want.Sorted != got.Sorted {
		d.add("is_sorted: want %v, got %v", want.Sorted, got.Sorted)
	}
	wf, gf := fieldIDs(want), fieldIDs(got)
	if !slices.Equal(wf, gf) {
		d.add("fields: want IDs %v, got %v", wf, gf)
		return d.String()
	}
	if len(want.Outputs) != len(got.Outputs) {
		d.add("outputs: want %d %v, got %d %v", len(want.Outputs), rowCounts(want), len(got.Outputs), rowCounts(got))
	}
	for i := range min(len(want.Outputs), len(got.Outputs)) {
		w, g := want.Outputs[i], got.Outputs[i]
		where := fmt.Sprintf("output %d (segment %d)", i, g.SegmentID)
		if len(w.Rows) != len(g.Rows) {
			d.add("%s: want %d rows, got %d", where, len(w.Rows), len(g.Rows))
		}
		for r := range min(len(w.Rows), len(g.Rows)) {
			if diffRow(d, want, where, r, w.Rows[r], g.Rows[r]) {
				break
			}
		}
	}
	if len(want.Outputs) != len(got.Outputs) || !slices.Equal(rowCounts(want), rowCounts(got)) {
		wr, gr := allRows(want), allRows(got)
		if slices.EqualFunc(wr, gr, rowEqual) {
			d.add("all %d rows are equal in order: only the split into outputs differs", len(wr))
		}
	}
	return d.String()
}

// diffRow reports the differences of one row and whether there were any.
func diffRow(d *diffBuf, res *MixResult, where string, r int, w, g Row) bool {
	var parts []string
	if w.PK != g.PK {
		parts = append(parts, fmt.Sprintf("pk want %s, got %s", formatValue(w.PK), formatValue(g.PK)))
	}
	if w.TS != g.TS {
		parts = append(parts, fmt.Sprintf("ts want %d, got %d", w.TS, g.TS))
	}
	if w.Offset >= 0 && g.Offset >= 0 && (w.Segment != g.Segment || w.Offset != g.Offset) {
		parts = append(parts, fmt.Sprintf("origin want segment %d row %d, got segment %d row %d", w.Segment, w.Offset, g.Segment, g.Offset))
	}
	for i, f := range res.Fields {
		if i >= len(w.Values) || i >= len(g.Values) {
			parts = append(parts, fmt.Sprintf("want %d values, got %d", len(w.Values), len(g.Values)))
			break
		}
		if !valueEqual(w.Values[i], g.Values[i]) {
			parts = append(parts, fmt.Sprintf("field %d (%s) want %s, got %s",
				f.GetFieldID(), f.GetName(), formatTyped(w.Values[i], g.Values[i]), formatTyped(g.Values[i], w.Values[i])))
		}
	}
	if len(parts) == 0 {
		return false
	}
	d.add("%s row %d (want pk %s ts %d from segment %d row %d): %s",
		where, r, formatValue(w.PK), w.TS, w.Segment, w.Offset, strings.Join(parts, "; "))
	return true
}

func rowEqual(a, b Row) bool {
	if a.PK != b.PK || a.TS != b.TS || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if !valueEqual(a.Values[i], b.Values[i]) {
			return false
		}
	}
	return true
}

func fieldIDs(r *MixResult) []int64 {
	ids := make([]int64, len(r.Fields))
	for i, f := range r.Fields {
		ids[i] = f.GetFieldID()
	}
	return ids
}

func rowCounts(r *MixResult) []int {
	n := make([]int, len(r.Outputs))
	for i, o := range r.Outputs {
		n[i] = len(o.Rows)
	}
	return n
}

func allRows(r *MixResult) []Row {
	var rows []Row
	for _, o := range r.Outputs {
		rows = append(rows, o.Rows...)
	}
	return rows
}

// valueEqual compares canonical values: same Go type and same value;
// floats compare by bit pattern (so NaN equals NaN), bytes by content.
func valueEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return a == b
}

// formatTyped formats v, adding its Go type when other has a different one.
func formatTyped(v, other any) string {
	if v != nil && other != nil && fmt.Sprintf("%T", v) != fmt.Sprintf("%T", other) {
		return fmt.Sprintf("%T %s", v, formatValue(v))
	}
	return formatValue(v)
}

// formatValue renders a canonical value for a diff: null, quoted strings
// (clipped), printable bytes quoted, other bytes as length plus hex prefix.
func formatValue(v any) string {
	const clip = 64
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > clip {
			return strconv.Quote(x[:clip]) + fmt.Sprintf("...(%d bytes)", len(x))
		}
		return strconv.Quote(x)
	case []byte:
		if utf8.Valid(x) && !slices.ContainsFunc(x, func(c byte) bool { return c < 0x20 }) {
			if len(x) > clip {
				return strconv.Quote(string(x[:clip])) + fmt.Sprintf("...(%d bytes)", len(x))
			}
			return strconv.Quote(string(x))
		}
		if len(x) > 16 {
			return fmt.Sprintf("%d bytes %x...", len(x), x[:16])
		}
		return fmt.Sprintf("%d bytes %x", len(x), x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// DiffL0 describes the first differences between an expected and a
// produced L0 result: targets missing or extra, and per target the record
// count and the first differing record. It returns "" when they agree.
func DiffL0(want, got *L0Result) string {
	d := &diffBuf{}
	for _, id := range want.Order {
		g, ok := got.Targets[id]
		if !ok {
			d.add("target segment %d: want %d delete records, got none", id, len(want.Targets[id]))
			continue
		}
		w := want.Targets[id]
		if len(w) != len(g) {
			d.add("target segment %d: want %d delete records, got %d", id, len(w), len(g))
		}
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				d.add("target segment %d record %d: want pk %s ts %d, got pk %s ts %d",
					id, i, formatTyped(w[i].PK, g[i].PK), w[i].TS, formatTyped(g[i].PK, w[i].PK), g[i].TS)
				break
			}
		}
	}
	for _, id := range got.Order {
		if _, ok := want.Targets[id]; !ok {
			d.add("target segment %d: want no delete records, got %d", id, len(got.Targets[id]))
		}
	}
	return d.String()
}
