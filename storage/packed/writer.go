package packed

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// DefaultRowGroupBytes is milvus-storage's DEFAULT_MAX_ROW_GROUP_SIZE: the
// estimated Arrow memory at which a row group is cut.
const DefaultRowGroupBytes = 1 << 20

// fieldIDKey is the Arrow field metadata key pqarrow maps to and from the
// Parquet field_id.
const fieldIDKey = "PARQUET:field_id"

// ArrowField returns the Arrow field Milvus' packed writer uses for f: its
// name, binlog.ArrowType's type, nullable as the field is (so non-nullable
// fields are Parquet REQUIRED) and PARQUET:field_id metadata.
func ArrowField(f *schemapb.FieldSchema) (arrow.Field, error) {
	t, err := binlog.ArrowType(f)
	if err != nil {
		return arrow.Field{}, err
	}
	return arrow.Field{Name: f.GetName(), Type: t, Nullable: f.GetNullable(),
		Metadata: arrow.NewMetadata([]string{fieldIDKey}, []string{strconv.FormatInt(f.GetFieldID(), 10)})}, nil
}

// WriterOptions tunes a Writer; the zero value is what Milvus writes,
// except that fixed-width vector columns are not dictionary-encoded.
type WriterOptions struct {
	// RowGroupBytes is the estimated Arrow memory at which a row group is
	// cut; 0 means DefaultRowGroupBytes. Tests use small values.
	RowGroupBytes int64
	// VectorDictionary dictionary-encodes FixedSizeBinary (dense vector)
	// columns too, as milvus-storage does. Off by default: a 1 MiB row
	// group of distinct vectors outgrows the 1 MiB dictionary limit in
	// every row group, and arrow-go's fallback to PLAIN then rebuilds the
	// values, for no smaller file (RATIONALE.md).
	VectorDictionary bool
	// SizeHint presizes the file's buffer (e.g. the group's Arrow bytes);
	// 0 lets it grow.
	SizeHint int64
}

// Info reports what a Writer wrote.
type Info struct {
	Rows      int64
	RowGroups []RowGroup // exactly the file's row_group_metadata
}

// Writer builds one column-group file in memory. Columns are the group's
// fields in group order; the footer carries the whole split's
// group_field_id_list (identical in every file of the split), the
// row_group_metadata of the row groups actually written and storage_version.
//
// Row groups are cut as milvus-storage cuts them: each written batch's
// top-level Arrow buffer bytes (binlog.MemorySize) averaged per row, a row
// group closing once its estimate reaches RowGroupBytes (a row larger than
// that gets one of its own). Columns are ZSTD level 3, dictionary encoding
// on, statistics off for Binary and FixedSizeBinary columns (as the 2.6
// branch of milvus-storage writes). The same input gives the same bytes.
// A Writer is not safe for concurrent use.
type Writer struct {
	fields []*schemapb.FieldSchema // the group's, in column order
	schema *arrow.Schema
	buf    bytes.Buffer
	fw     *pqarrow.FileWriter
	target int64

	rgMem, rgRows int64 // the open row group
	info          Info
	err           error // sticky: a failed write leaves the file unusable
}

// NewWriter starts the file of group groupID of the split groups (SplitGroups'
// result, in ID order). fields are the schema's fields (AllFields): every
// group member must be one of them and each of them in exactly one group.
func NewWriter(groups []Group, groupID int64, fields []*schemapb.FieldSchema, opts WriterOptions) (*Writer, error) {
	byID := make(map[int64]*schemapb.FieldSchema, len(fields))
	for _, f := range fields {
		byID[f.GetFieldID()] = f
	}
	var members []int64
	seen := map[int64]bool{}
	for i, g := range groups {
		if i > 0 && g.ID <= groups[i-1].ID {
			return nil, fmt.Errorf("packed writer: groups are not in ascending ID order (%d after %d)", g.ID, groups[i-1].ID)
		}
		if len(g.Fields) == 0 {
			return nil, fmt.Errorf("packed writer: group %d has no fields", g.ID)
		}
		for _, id := range g.Fields {
			if id < 0 || id > math.MaxInt32 {
				return nil, fmt.Errorf("packed writer: field ID %d does not fit a Parquet field_id (int32)", id)
			}
			if byID[id] == nil {
				return nil, fmt.Errorf("packed writer: group %d lists field %d, which is not in the schema", g.ID, id)
			}
			if seen[id] {
				return nil, fmt.Errorf("packed writer: field %d is in two groups", id)
			}
			seen[id] = true
		}
		if g.ID == groupID {
			members = g.Fields
		}
	}
	if members == nil {
		return nil, fmt.Errorf("packed writer: group %d is not in the split", groupID)
	}
	// Milvus needs every field in exactly one group (§5); a field left out
	// would load as nulls.
	for _, f := range fields {
		if !seen[f.GetFieldID()] {
			return nil, fmt.Errorf("packed writer: field %d (%s) is in no group", f.GetFieldID(), f.GetName())
		}
	}
	w := &Writer{target: opts.RowGroupBytes}
	if w.target <= 0 {
		w.target = DefaultRowGroupBytes
	}
	afs := make([]arrow.Field, len(members))
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithMaxRowGroupLength(math.MaxInt64),
	}
	for i, id := range members {
		f := byID[id]
		af, err := ArrowField(f)
		if err != nil {
			return nil, fmt.Errorf("packed writer: group %d: %w", groupID, err)
		}
		afs[i] = af
		w.fields = append(w.fields, f)
		switch af.Type.ID() {
		case arrow.FIXED_SIZE_BINARY:
			if !opts.VectorDictionary {
				props = append(props, parquet.WithDictionaryFor(af.Name, false))
			}
			props = append(props, parquet.WithStatsFor(af.Name, false))
		case arrow.BINARY:
			props = append(props, parquet.WithStatsFor(af.Name, false))
		}
	}
	w.schema = arrow.NewSchema(afs, nil)
	if opts.SizeHint > 0 {
		w.buf.Grow(int(min(opts.SizeHint, 1<<30)))
	}
	fw, err := pqarrow.NewFileWriter(w.schema, &w.buf, parquet.NewWriterProperties(props...), pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, fmt.Errorf("packed writer: group %d: %w", groupID, err)
	}
	w.fw = fw
	if err := fw.AppendKeyValueMetadata(KeyGroupFieldIDList, FormatGroupFieldIDList(groups)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("packed writer: %w", err)
	}
	return w, nil
}

// Schema returns the file's Arrow schema.
func (w *Writer) Schema() *arrow.Schema { return w.schema }

// Write appends rows: one column per group member, in group order, all of
// the same length, of ArrowField's type; a non-nullable field's column may
// hold no nulls. The columns are not retained after Write returns.
func (w *Writer) Write(cols []arrow.Array) error {
	if w.err != nil {
		return w.err
	}
	if err := w.check(cols); err != nil {
		return err
	}
	rows := int64(cols[0].Len())
	if rows == 0 {
		return nil
	}
	var size int64
	for _, c := range cols {
		size += binlog.MemorySize(c)
	}
	avg := float64(size) / float64(rows)
	for off := int64(0); off < rows; {
		if w.rgMem >= w.target {
			w.closeRowGroup()
		}
		n := rows - off
		if avg > 0 {
			n = min(max(int64(float64(w.target-w.rgMem)/avg), 1), n)
		}
		if err := w.writeSlice(cols, off, n); err != nil {
			w.err = fmt.Errorf("packed writer: %w", err)
			return w.err
		}
		w.rgMem += int64(avg * float64(n))
		w.rgRows += n
		off += n
	}
	return nil
}

func (w *Writer) check(cols []arrow.Array) error {
	if len(cols) != len(w.fields) {
		return fmt.Errorf("packed writer: %d columns, the group has %d fields", len(cols), len(w.fields))
	}
	for i, c := range cols {
		f := w.fields[i]
		if !arrow.TypeEqual(c.DataType(), w.schema.Field(i).Type) {
			return fmt.Errorf("packed writer: field %d (%s): column type %s, want %s for %s",
				f.GetFieldID(), f.GetName(), c.DataType(), w.schema.Field(i).Type, f.GetDataType())
		}
		if c.Len() != cols[0].Len() {
			return fmt.Errorf("packed writer: field %d (%s) has %d rows, field %d has %d",
				f.GetFieldID(), f.GetName(), c.Len(), w.fields[0].GetFieldID(), cols[0].Len())
		}
		if c.NullN() > 0 && !f.GetNullable() {
			return fmt.Errorf("packed writer: field %d (%s) is not nullable but its column has %d nulls",
				f.GetFieldID(), f.GetName(), c.NullN())
		}
	}
	return nil
}

func (w *Writer) writeSlice(cols []arrow.Array, off, n int64) error {
	if w.rgRows == 0 {
		if err := w.fw.NewBufferedRowGroupChecked(); err != nil {
			return err
		}
	}
	slices := make([]arrow.Array, len(cols))
	for i, c := range cols {
		slices[i] = array.NewSlice(c, off, off+n)
		defer slices[i].Release()
	}
	rec := array.NewRecordBatch(w.schema, slices, n)
	defer rec.Release()
	return w.fw.WriteBuffered(rec)
}

// closeRowGroup records the open row group; the Parquet writer closes it
// when the next one starts or the file closes.
func (w *Writer) closeRowGroup() {
	if w.rgRows == 0 {
		return
	}
	w.info.RowGroups = append(w.info.RowGroups, RowGroup{MemorySize: w.rgMem, Rows: w.rgRows, Offset: w.info.Rows})
	w.info.Rows += w.rgRows
	w.rgMem, w.rgRows = 0, 0
}

// Finish closes the file and returns its bytes (owned by the caller) and
// what it holds. A file with no rows has no row groups and an empty
// row_group_metadata, as milvus-storage writes it.
func (w *Writer) Finish() ([]byte, Info, error) {
	if w.err != nil {
		w.fw.Close()
		return nil, Info{}, w.err
	}
	w.err = fmt.Errorf("packed writer: Finish already called")
	w.closeRowGroup()
	for _, kv := range [][2]string{
		{KeyRowGroupMetadata, FormatRowGroupMetadata(w.info.RowGroups)},
		{KeyStorageVersion, StorageVersion},
	} {
		if err := w.fw.AppendKeyValueMetadata(kv[0], kv[1]); err != nil {
			w.fw.Close()
			return nil, Info{}, fmt.Errorf("packed writer: %w", err)
		}
	}
	if err := w.fw.Close(); err != nil {
		return nil, Info{}, fmt.Errorf("packed writer: close: %w", err)
	}
	b := w.buf.Bytes()
	if err := binlog.SortEncodingStats(b); err != nil {
		return nil, Info{}, fmt.Errorf("packed writer: %w", err)
	}
	return b, w.info, nil
}
