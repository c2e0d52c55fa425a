package reference

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/objstore"
)

// table is one segment's insert data read whole: cols[i][r] is the value of
// fields[i] at row r.
type table struct {
	fields []*schemapb.FieldSchema
	cols   [][]any
	rows   int
}

func readObject(ctx context.Context, store objstore.Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return b, nil
}

// logIDOf returns a binlog's log ID: the LogID field, or the last element of
// its path when LogID is unset.
func logIDOf(b *datapb.Binlog) (int64, error) {
	if b.GetLogID() > 0 {
		return b.GetLogID(), nil
	}
	id, err := strconv.ParseInt(path.Base(b.GetLogPath()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("binlog %q has no logID and its name is not a number", b.GetLogPath())
	}
	return id, nil
}

// readInsert reads the insert binlogs fbs of segment seg for every field of
// fields, aligning chunks as Milvus's V1 reader does (§9.6): each field's
// files sorted by logID, chunk i is the i-th file of every field, a field
// with fewer files is aligned to the end and its missing leading chunks are
// filled with its default value or nulls; a field with no files at all is
// filled likewise. All files of a chunk must hold the same number of rows.
func readInsert(ctx context.Context, store objstore.Store, seg int64, fields []*schemapb.FieldSchema, fbs []*datapb.FieldBinlog) (*table, error) {
	type file struct {
		id  int64
		key string
	}
	files := map[int64][]file{}
	for _, fb := range fbs {
		for _, b := range fb.GetBinlogs() {
			id, err := logIDOf(b)
			if err != nil {
				return nil, fmt.Errorf("segment %d field %d: %w", seg, fb.GetFieldID(), err)
			}
			if b.GetLogPath() == "" {
				return nil, fmt.Errorf("segment %d field %d: binlog %d has no log_path", seg, fb.GetFieldID(), id)
			}
			files[fb.GetFieldID()] = append(files[fb.GetFieldID()], file{id, b.GetLogPath()})
		}
	}
	chunks := 0
	for _, fs := range files {
		slices.SortFunc(fs, func(a, b file) int { return cmp.Compare(a.id, b.id) })
		chunks = max(chunks, len(fs))
	}

	// chunkVals[f][c] holds field f's values of chunk c; nil when the field
	// has no file for that chunk.
	chunkVals := make([][][]any, len(fields))
	chunkRows := make([]int, chunks)
	chunkKey := make([]string, chunks) // a key that set chunkRows, for errors
	for i, f := range fields {
		fs := files[f.GetFieldID()]
		chunkVals[i] = make([][]any, chunks)
		for j, fl := range fs {
			c := chunks - len(fs) + j
			vals, err := readInsertFile(ctx, store, fl.key, f)
			if err != nil {
				return nil, fmt.Errorf("segment %d: %w", seg, err)
			}
			if chunkKey[c] == "" {
				chunkRows[c], chunkKey[c] = len(vals), fl.key
			} else if len(vals) != chunkRows[c] {
				return nil, fmt.Errorf("segment %d chunk %d: %s holds %d rows but %s holds %d",
					seg, c, fl.key, len(vals), chunkKey[c], chunkRows[c])
			}
			chunkVals[i][c] = vals
		}
	}

	t := &table{fields: fields, cols: make([][]any, len(fields))}
	for _, n := range chunkRows {
		t.rows += n
	}
	for i, f := range fields {
		col := make([]any, 0, t.rows)
		for c, vals := range chunkVals[i] {
			if vals == nil {
				fill, err := missingValue(f)
				if err != nil {
					return nil, fmt.Errorf("segment %d: chunk %d: %w", seg, c, err)
				}
				for range chunkRows[c] {
					col = append(col, fill)
				}
				continue
			}
			col = append(col, vals...)
		}
		t.cols[i] = col
	}
	return t, nil
}

// readInsertFile decodes one insert binlog into canonical values.
func readInsertFile(ctx context.Context, store objstore.Store, key string, f *schemapb.FieldSchema) ([]any, error) {
	data, err := readObject(ctx, store, key)
	if err != nil {
		return nil, err
	}
	r, err := binlog.NewInsertReader(key, bytes.NewReader(data), int64(len(data)), f, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []any
	for {
		a, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out, err = appendValues(out, a)
		a.Release()
		if err != nil {
			return nil, fmt.Errorf("binlog %q: %w", key, err)
		}
	}
}

// appendValues appends the canonical values of a's rows to out.
func appendValues(out []any, a arrow.Array) ([]any, error) {
	for i := range a.Len() {
		if a.IsNull(i) {
			out = append(out, nil)
			continue
		}
		var v any
		switch c := a.(type) {
		case *array.Boolean:
			v = c.Value(i)
		case *array.Int8:
			v = c.Value(i)
		case *array.Int16:
			v = c.Value(i)
		case *array.Int32:
			v = c.Value(i)
		case *array.Int64:
			v = c.Value(i)
		case *array.Float32:
			v = c.Value(i)
		case *array.Float64:
			v = c.Value(i)
		case *array.String:
			v = strings.Clone(c.Value(i)) // Value aliases the Arrow buffer
		case *array.Binary:
			v = bytes.Clone(c.Value(i))
		case *array.FixedSizeBinary:
			v = bytes.Clone(c.Value(i))
		default:
			return nil, fmt.Errorf("unsupported Arrow column type %s", a.DataType())
		}
		out = append(out, v)
	}
	return out, nil
}

// missingValue is what a field without data for some rows holds there: its
// default value when the schema sets one, otherwise null, which needs a
// nullable field (§7, schema evolution).
func missingValue(f *schemapb.FieldSchema) (any, error) {
	if dv := f.GetDefaultValue(); dv != nil && dv.GetData() != nil {
		return defaultValue(f, dv)
	}
	if !f.GetNullable() {
		return nil, fmt.Errorf("field %d (%s) has no binlog here and is neither nullable nor has a default value",
			f.GetFieldID(), f.GetName())
	}
	return nil, nil
}

func defaultValue(f *schemapb.FieldSchema, dv *schemapb.ValueField) (any, error) {
	switch d := dv.GetData().(type) {
	case *schemapb.ValueField_BoolData:
		if f.GetDataType() == schemapb.DataType_Bool {
			return d.BoolData, nil
		}
	case *schemapb.ValueField_IntData:
		switch f.GetDataType() {
		case schemapb.DataType_Int8:
			return int8(d.IntData), nil
		case schemapb.DataType_Int16:
			return int16(d.IntData), nil
		case schemapb.DataType_Int32:
			return d.IntData, nil
		}
	case *schemapb.ValueField_LongData:
		if f.GetDataType() == schemapb.DataType_Int64 {
			return d.LongData, nil
		}
	case *schemapb.ValueField_TimestamptzData:
		if f.GetDataType() == schemapb.DataType_Timestamptz {
			return d.TimestamptzData, nil
		}
	case *schemapb.ValueField_FloatData:
		if f.GetDataType() == schemapb.DataType_Float {
			return d.FloatData, nil
		}
	case *schemapb.ValueField_DoubleData:
		if f.GetDataType() == schemapb.DataType_Double {
			return d.DoubleData, nil
		}
	case *schemapb.ValueField_StringData:
		switch f.GetDataType() {
		case schemapb.DataType_VarChar, schemapb.DataType_String, schemapb.DataType_Text:
			return d.StringData, nil
		case schemapb.DataType_JSON:
			return []byte(d.StringData), nil
		}
	case *schemapb.ValueField_BytesData:
		if f.GetDataType() == schemapb.DataType_JSON {
			return bytes.Clone(d.BytesData), nil
		}
	}
	return nil, fmt.Errorf("field %d (%s) of type %s: default value %T does not fit the type",
		f.GetFieldID(), f.GetName(), f.GetDataType(), dv.GetData())
}

// Delete is one delete record: PK is an int64 or a string.
type Delete struct {
	PK any
	TS uint64
}

// readDeletes reads every deltalog in fbs, in list order, records in file
// order. Every record's pk must have type pkType.
func readDeletes(ctx context.Context, store objstore.Store, seg int64, pkType schemapb.DataType, fbs []*datapb.FieldBinlog) ([]Delete, error) {
	var out []Delete
	for _, fb := range fbs {
		for _, b := range fb.GetBinlogs() {
			key := b.GetLogPath()
			if key == "" {
				return nil, fmt.Errorf("segment %d: deltalog %d has no log_path", seg, b.GetLogID())
			}
			data, err := readObject(ctx, store, key)
			if err != nil {
				return nil, fmt.Errorf("segment %d: %w", seg, err)
			}
			d, _, err := deltalog.Read(key, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return nil, fmt.Errorf("segment %d: %w", seg, err)
			}
			if d.Len() == 0 {
				continue
			}
			if d.PKType != pkType {
				return nil, fmt.Errorf("segment %d: deltalog %s holds %s pks, the schema's pk is %s", seg, key, d.PKType, pkType)
			}
			for i, ts := range d.Timestamps {
				if pkType == schemapb.DataType_VarChar {
					out = append(out, Delete{d.StrPKs[i], ts})
				} else {
					out = append(out, Delete{d.IntPKs[i], ts})
				}
			}
		}
	}
	return out, nil
}

// pkField returns the primary-key field and its index in schema.Fields.
func pkField(schema *schemapb.CollectionSchema) (*schemapb.FieldSchema, int, error) {
	if schema == nil {
		return nil, 0, errors.New("plan has no schema")
	}
	if len(schema.GetStructArrayFields()) > 0 {
		return nil, 0, errors.New("struct array fields are not supported by the reference")
	}
	for i, f := range schema.GetFields() {
		if f.GetIsPrimaryKey() {
			switch f.GetDataType() {
			case schemapb.DataType_Int64, schemapb.DataType_VarChar:
				return f, i, nil
			}
			return nil, 0, fmt.Errorf("primary key field %d (%s) has type %s, want Int64 or VarChar",
				f.GetFieldID(), f.GetName(), f.GetDataType())
		}
	}
	return nil, 0, errors.New("schema has no primary key field")
}

// fieldIndex returns the index of field id in schema.Fields, or -1.
func fieldIndex(schema *schemapb.CollectionSchema, id int64) int {
	for i, f := range schema.GetFields() {
		if f.GetFieldID() == id {
			return i
		}
	}
	return -1
}
