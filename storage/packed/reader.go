package packed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/objstore"
)

// ReaderOptions selects what a Reader decodes.
type ReaderOptions struct {
	// Fields are the field IDs to decode, in the order Next returns their
	// columns; each must be a column of the file. nil means every column,
	// in file order.
	Fields []int64
	// BatchRows caps the rows of one batch; 0 means binlog.DefaultBatchRows.
	BatchRows int
}

// readBufferSize is the Parquet read buffer: pages larger than it are read
// whole, a column chunk never is.
const readBufferSize = 1 << 20

// Reader streams one column-group file as record batches, row group by row
// group; a batch never spans two row groups. Columns are found by their
// Parquet field_id only. Memory is bounded by one row group of the
// projected columns plus one batch. A Reader is not safe for concurrent use.
type Reader struct {
	key    string
	pf     *file.Reader
	fr     *pqarrow.FileReader
	footer Footer
	ids    []int64 // the file's columns
	rows   int64

	proj   []int                   // file column index of each projected field, in output order
	read   []int                   // proj sorted: the order pqarrow decodes
	fields []*schemapb.FieldSchema // per projected field
	schema *arrow.Schema           // of the batches Next returns
	rg     int                     // current row group
	rgRead int64                   // rows read from it
	rr     pqarrow.RecordReader
	done   bool
}

// NewReader opens the packed file stored under key (r holds size bytes;
// objstore.NewReaderAt gives one for a stored object). fields is the
// collection's field list (AllFields); every file column must be one of
// them, with binlog.ArrowType's type. It validates the footer: a
// group_field_id_list whose groups include this file's columns exactly,
// in order; row_group_metadata (or a legacy file's row_group_size) agreeing
// with the Parquet row groups entry by entry; storage_version present
// beside row_group_metadata. Errors name key; errors about the bytes are
// marked corrupt.Err.
func NewReader(key string, r io.ReaderAt, size int64, fields []*schemapb.FieldSchema, opts ReaderOptions) (rd *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, corrupt.Mark(fmt.Errorf("packed file %q: malformed Parquet (decoder panic: %v)", key, p))
		}
	}()
	rd, err = open(r, size, fields, opts)
	if err != nil {
		return nil, bad(key, err)
	}
	rd.key = key
	return rd, nil
}

// bad names key in err and marks it corrupt unless the store failed or
// the file is fine but not readable here.
func bad(key string, err error) error {
	err = fmt.Errorf("packed file %q: %w", key, err)
	var nc notCorrupt
	if objstore.IsStoreError(err) || errors.As(err, &nc) {
		return err
	}
	return corrupt.Mark(err)
}

// notCorrupt is an error that says nothing against the file's bytes: an
// encrypted file, a schema this package cannot map.
type notCorrupt struct{ error }

func (e notCorrupt) Unwrap() error { return e.error }

// Layout is what a packed file says about itself, read without a schema.
type Layout struct {
	Footer
	FieldIDs []int64          // the columns' field IDs, in file order
	Names    []string         // the columns' names (informational: readers go by field ID)
	Types    []arrow.DataType // the columns' Arrow types, as the Parquet schema maps them
	Nullable []bool           // the columns are OPTIONAL (true) or REQUIRED
	Rows     int64
	// ParquetRowGroups are the Parquet footer's row groups, in file order.
	ParquetRowGroups []ParquetRowGroup
}

// ParquetRowGroup is one row group as the Parquet footer describes it.
type ParquetRowGroup struct {
	Rows              int64
	CompressedBytes   int64 // the column chunks' bytes in the file
	UncompressedBytes int64 // the column chunks' bytes decompressed (Parquet total_byte_size)
}

// ReadLayout opens the packed file stored under key and returns its layout
// after the checks NewReader makes that need no schema (footer entries
// against the Parquet row groups, a field_id on every column, the columns
// forming one listed group, a Parquet schema with an Arrow mapping). For
// tools that show a file; errors are NewReader's.
func ReadLayout(key string, r io.ReaderAt, size int64) (l Layout, err error) {
	defer func() {
		if p := recover(); p != nil {
			l, err = Layout{}, corrupt.Mark(fmt.Errorf("packed file %q: malformed Parquet (decoder panic: %v)", key, p))
		}
	}()
	pf, ft, ids, err := openFile(r, size)
	if err != nil {
		return Layout{}, bad(key, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	sc, err := pqarrow.FromParquet(md.Schema, nil, md.KeyValueMetadata())
	if err != nil {
		return Layout{}, bad(key, fmt.Errorf("Parquet schema: %w", err))
	}
	l = Layout{Footer: ft, FieldIDs: ids, Rows: pf.NumRows()}
	for i := range ids {
		f := sc.Field(i)
		l.Names = append(l.Names, f.Name)
		l.Types = append(l.Types, f.Type)
		l.Nullable = append(l.Nullable, f.Nullable)
	}
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		var compressed int64
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return Layout{}, bad(key, fmt.Errorf("row group %d column %d: %w", i, c, err))
			}
			compressed += cc.TotalCompressedSize()
		}
		l.ParquetRowGroups = append(l.ParquetRowGroups, ParquetRowGroup{Rows: rg.NumRows(),
			CompressedBytes: compressed, UncompressedBytes: rg.TotalByteSize()})
	}
	return l, nil
}

// openFile opens the Parquet file and checks what needs no schema.
func openFile(r io.ReaderAt, size int64) (*file.Reader, Footer, []int64, error) {
	if size < 12 {
		return nil, Footer{}, nil, fmt.Errorf("%d bytes is too short for a Parquet file", size)
	}
	tail := make([]byte, 4)
	if _, err := r.ReadAt(tail, size-4); err != nil {
		return nil, Footer{}, nil, fmt.Errorf("reading the Parquet magic: %w", err)
	}
	switch string(tail) {
	case "PAR1":
	case "PARE":
		return nil, Footer{}, nil, notCorrupt{errors.New("the Parquet footer is encrypted (PARE); encrypted collections are not supported")}
	default:
		return nil, Footer{}, nil, fmt.Errorf("file ends in %q, not the Parquet magic PAR1", tail)
	}
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = readBufferSize
	pf, err := file.NewParquetReader(io.NewSectionReader(r, 0, size), file.WithReadProps(props))
	if err != nil {
		return nil, Footer{}, nil, fmt.Errorf("not a valid Parquet file: %w", err)
	}
	ft, ids, err := checkFile(pf, size)
	if err != nil {
		pf.Close()
		return nil, Footer{}, nil, err
	}
	return pf, ft, ids, nil
}

func checkFile(pf *file.Reader, size int64) (Footer, []int64, error) {
	if err := binlog.CheckChunkBounds(pf, size); err != nil {
		return Footer{}, nil, err
	}
	ft, err := readFooter(pf)
	if err != nil {
		return Footer{}, nil, err
	}
	ids, err := columnIDs(pf)
	if err != nil {
		return Footer{}, nil, err
	}
	if !slices.ContainsFunc(ft.Groups, func(g []int64) bool { return slices.Equal(g, ids) }) {
		return Footer{}, nil, fmt.Errorf("the file's columns (field IDs %v) are not one of the groups of %s %v",
			ids, KeyGroupFieldIDList, ft.Groups)
	}
	return ft, ids, nil
}

func open(r io.ReaderAt, size int64, fields []*schemapb.FieldSchema, opts ReaderOptions) (*Reader, error) {
	pf, ft, ids, err := openFile(r, size)
	if err != nil {
		return nil, err
	}
	rd := &Reader{pf: pf, rows: pf.NumRows(), footer: ft, ids: ids}
	ok := false
	defer func() {
		if !ok {
			pf.Close()
		}
	}()
	byID := make(map[int64]*schemapb.FieldSchema, len(fields))
	for _, f := range fields {
		byID[f.GetFieldID()] = f
	}
	for i, id := range rd.ids {
		if byID[id] == nil {
			return nil, fmt.Errorf("column %d has field_id %d, which is not in the schema", i, id)
		}
	}
	rd.fr, err = pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(cmpOr(opts.BatchRows, binlog.DefaultBatchRows))}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("Parquet schema: %w", err)
	}
	sc, err := rd.fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("Parquet schema: %w", err)
	}
	if err := rd.project(sc, byID, opts.Fields); err != nil {
		return nil, err
	}
	ok = true
	return rd, nil
}

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// readFooter parses the three key-value entries (or the legacy ones) and
// checks them against the Parquet row groups.
func readFooter(pf *file.Reader) (Footer, error) {
	md := pf.MetaData()
	kv := map[string]string{}
	for _, e := range md.KeyValueMetadata() {
		if old, dup := kv[e.GetKey()]; dup && old != e.GetValue() {
			return Footer{}, fmt.Errorf("footer key %q appears twice with different values", e.GetKey())
		}
		kv[e.GetKey()] = e.GetValue()
	}
	var ft Footer
	list, ok := kv[KeyGroupFieldIDList]
	if !ok {
		return Footer{}, fmt.Errorf("footer has no %s", KeyGroupFieldIDList)
	}
	var err error
	if ft.Groups, err = ParseGroupFieldIDList(list); err != nil {
		return Footer{}, err
	}
	n := md.NumRowGroups()
	if s, ok := kv[KeyRowGroupMetadata]; ok {
		if ft.StorageVersion, ok = kv[KeyStorageVersion]; !ok {
			return Footer{}, fmt.Errorf("footer has %s but no %s", KeyRowGroupMetadata, KeyStorageVersion)
		}
		if ft.RowGroups, err = ParseRowGroupMetadata(s); err != nil {
			return Footer{}, err
		}
		if len(ft.RowGroups) != n {
			return Footer{}, fmt.Errorf("%s lists %d row groups, the Parquet footer has %d", KeyRowGroupMetadata, len(ft.RowGroups), n)
		}
	} else if s, ok := kv[KeyLegacyRowGroupSize]; ok {
		sizes, err := parseLegacyRowGroupSize(s, n)
		if err != nil {
			return Footer{}, err
		}
		ft.Legacy = true
		ft.RowGroups = make([]RowGroup, n)
		for i := range ft.RowGroups {
			ft.RowGroups[i] = RowGroup{MemorySize: sizes[i], Rows: md.RowGroup(i).NumRows()}
		}
	} else {
		return Footer{}, fmt.Errorf("footer has neither %s nor the legacy %s", KeyRowGroupMetadata, KeyLegacyRowGroupSize)
	}
	var off int64
	for i, rg := range ft.RowGroups {
		if ft.Legacy {
			ft.RowGroups[i].Offset = off
		} else if rg.Rows != md.RowGroup(i).NumRows() || rg.Offset != off {
			return Footer{}, fmt.Errorf("%s entry %d says %d rows at offset %d, Parquet row group %d has %d rows at offset %d",
				KeyRowGroupMetadata, i, rg.Rows, rg.Offset, i, md.RowGroup(i).NumRows(), off)
		}
		off += md.RowGroup(i).NumRows()
	}
	if off != md.NumRows {
		return Footer{}, fmt.Errorf("the Parquet row groups hold %d rows, its footer says %d", off, md.NumRows)
	}
	return ft, nil
}

// columnIDs returns the field_id of every top-level column, refusing
// columns without one, duplicates and nested (multi-leaf) columns, which
// Milvus' readers index as if they were one leaf.
func columnIDs(pf *file.Reader) ([]int64, error) {
	sc := pf.MetaData().Schema
	root := sc.Root()
	if root.NumFields() == 0 {
		return nil, fmt.Errorf("the Parquet file has no columns")
	}
	if root.NumFields() != sc.NumColumns() {
		return nil, fmt.Errorf("the Parquet file has %d top-level columns but %d leaves; packed files hold no nested columns",
			root.NumFields(), sc.NumColumns())
	}
	ids := make([]int64, root.NumFields())
	seen := map[int64]bool{}
	for i := range ids {
		node := root.Field(i)
		if node.FieldID() < 0 {
			return nil, fmt.Errorf("column %d (%q) has no field_id", i, node.Name())
		}
		ids[i] = int64(node.FieldID())
		if seen[ids[i]] {
			return nil, fmt.Errorf("field_id %d is on two columns", ids[i])
		}
		seen[ids[i]] = true
	}
	return ids, nil
}

// project resolves the requested field IDs to file columns and checks
// their Arrow types against the schema.
func (rd *Reader) project(sc *arrow.Schema, byID map[int64]*schemapb.FieldSchema, want []int64) error {
	if want == nil {
		want = rd.ids
	}
	if len(want) == 0 {
		return fmt.Errorf("no fields requested")
	}
	afs := make([]arrow.Field, len(want))
	for i, id := range want {
		col := slices.Index(rd.ids, id)
		if col < 0 {
			return fmt.Errorf("field %d is not a column of this file (field IDs %v)", id, rd.ids)
		}
		if slices.Contains(rd.proj, col) {
			return fmt.Errorf("field %d is requested twice", id)
		}
		f := byID[id]
		wantType, err := binlog.ArrowType(f)
		if err != nil {
			return notCorrupt{err}
		}
		af := sc.Field(col)
		if !arrow.TypeEqual(wantType, af.Type) {
			return fmt.Errorf("column %d (field %d, %s) has Arrow type %s, the schema's %s needs %s",
				col, id, f.GetName(), af.Type, f.GetDataType(), wantType)
		}
		af.Metadata = arrow.NewMetadata([]string{fieldIDKey}, []string{strconv.FormatInt(id, 10)})
		afs[i] = af
		rd.proj = append(rd.proj, col)
		rd.fields = append(rd.fields, f)
	}
	rd.read = slices.Sorted(slices.Values(rd.proj))
	rd.schema = arrow.NewSchema(afs, nil)
	return nil
}

// Footer returns the file's key-value entries as parsed.
func (rd *Reader) Footer() Footer { return rd.footer }

// FieldIDs returns the field IDs of the file's columns, in file order.
func (rd *Reader) FieldIDs() []int64 { return slices.Clone(rd.ids) }

// NumRows returns the rows the Parquet footer records.
func (rd *Reader) NumRows() int64 { return rd.rows }

// Schema returns the schema of the batches Next returns: the projected
// fields in ReaderOptions.Fields order, each with PARQUET:field_id.
func (rd *Reader) Schema() *arrow.Schema { return rd.schema }

// Next returns the next batch; the caller owns it and must Release it. It
// returns io.EOF after the last. A row group that decodes to another row
// count than its metadata says, or a non-nullable field holding nulls, is
// an error marked corrupt.Err naming the key.
func (rd *Reader) Next() (rec arrow.RecordBatch, err error) {
	if rd.done {
		return nil, io.EOF
	}
	defer func() {
		if p := recover(); p != nil {
			rd.done, rec = true, nil
			err = corrupt.Mark(fmt.Errorf("packed file %q: malformed Parquet (decoder panic: %v)", rd.key, p))
		}
		if err != nil && !errors.Is(err, io.EOF) {
			rd.done = true
		}
	}()
	for {
		if rd.rr == nil {
			if rd.rg >= len(rd.footer.RowGroups) {
				rd.done = true
				return nil, io.EOF
			}
			rr, err := rd.fr.GetRecordReader(context.Background(), rd.read, []int{rd.rg})
			if err != nil {
				return nil, bad(rd.key, fmt.Errorf("row group %d: %w", rd.rg, err))
			}
			rd.rr, rd.rgRead = rr, 0
		}
		if rd.rr.Next() {
			return rd.batch(rd.rr.RecordBatch())
		}
		rerr := rd.rr.Err()
		rd.rr.Release()
		rd.rr = nil
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, bad(rd.key, fmt.Errorf("decoding row group %d: %w", rd.rg, rerr))
		}
		if want := rd.footer.RowGroups[rd.rg].Rows; rd.rgRead != want {
			return nil, bad(rd.key, fmt.Errorf("row group %d decoded to %d rows, its metadata says %d", rd.rg, rd.rgRead, want))
		}
		rd.rg++
	}
}

// batch reorders a decoded batch into projection order and checks it.
func (rd *Reader) batch(in arrow.RecordBatch) (arrow.RecordBatch, error) {
	rd.rgRead += in.NumRows()
	if rd.rgRead > rd.footer.RowGroups[rd.rg].Rows {
		return nil, bad(rd.key, fmt.Errorf("row group %d decodes to more than the %d rows its metadata says",
			rd.rg, rd.footer.RowGroups[rd.rg].Rows))
	}
	cols := make([]arrow.Array, len(rd.proj))
	for i, col := range rd.proj {
		c := in.Column(slices.Index(rd.read, col))
		if f := rd.fields[i]; c.NullN() > 0 && !f.GetNullable() {
			return nil, bad(rd.key, fmt.Errorf("field %d (%s) is not nullable but row group %d holds %d nulls",
				f.GetFieldID(), f.GetName(), rd.rg, c.NullN()))
		}
		cols[i] = c
	}
	return array.NewRecordBatch(rd.schema, cols, in.NumRows()), nil
}

// Close releases the reader's resources.
func (rd *Reader) Close() error {
	rd.done = true
	if rd.rr != nil {
		rd.rr.Release()
		rd.rr = nil
	}
	if rd.pf != nil {
		err := rd.pf.Close()
		rd.pf = nil
		return err
	}
	return nil
}
