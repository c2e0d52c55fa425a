package binlog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// DefaultBatchRows is the batch size Milvus' V1 reader uses (§9.6).
const DefaultBatchRows = 1024

// readBufferSize is the Parquet read buffer per open payload: pages larger
// than it are read whole.
const readBufferSize = 1 << 20

// InsertReader streams the column of one insert binlog in Arrow batches.
// Only the first data event is read, as Milvus' C++ loader and compaction
// reader do. Memory is bounded by one Parquet column chunk (one row group of
// the single column) plus one batch, not by the file. An InsertReader is not
// safe for concurrent use; separate readers are.
type InsertReader struct {
	key   string
	field *schemapb.FieldSchema
	desc  Descriptor
	rows  int64
	pf    *file.Reader
	rr    pqarrow.RecordReader
	done  bool
}

// NewInsertReader opens the insert binlog stored under key (r holds size
// bytes) for field. It checks the container, that the event is an insert
// event, that the descriptor's field ID and payload type are the field's (a
// mismatch is marked corrupt.Err), that the Parquet payload parses and that
// its column 0 (whatever its name) has the field's Arrow type, including the
// dim-derived FixedSizeBinary width.
// batchRows <= 0 means DefaultBatchRows. Errors name key.
func NewInsertReader(key string, r io.ReaderAt, size int64, field *schemapb.FieldSchema, batchRows int) (ir *InsertReader, err error) {
	defer func() {
		if recoverInto(&err, key, recover()) {
			ir = nil
		}
	}()
	f, err := ReadFile(key, r, size)
	if err != nil {
		return nil, err
	}
	ir, err = openInsert(f, r, field, batchRows)
	if err != nil {
		return nil, fmt.Errorf("binlog %q: %w", key, err)
	}
	ir.key = key
	return ir, nil
}

func openInsert(f *File, r io.ReaderAt, field *schemapb.FieldSchema, batchRows int) (*InsertReader, error) {
	d := f.Descriptor
	if ev := f.Events[0]; ev.Type != InsertEvent {
		return nil, fmt.Errorf("event is %s, want InsertEvent", ev.Type)
	}
	if d.FieldID != field.GetFieldID() {
		return nil, corrupt.Mark(fmt.Errorf("descriptor says field %d, plan says field %d (%s)",
			d.FieldID, field.GetFieldID(), field.GetName()))
	}
	if d.PayloadType != field.GetDataType() {
		return nil, corrupt.Mark(fmt.Errorf("descriptor says payload type %s, plan says field %d (%s) is %s",
			d.PayloadType, field.GetFieldID(), field.GetName(), field.GetDataType()))
	}
	want, err := ArrowType(field)
	if err != nil {
		return nil, err
	}
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	// Read pages through a small buffer instead of copying each whole column
	// chunk out of r first: r usually holds the payload in memory already,
	// and a vector chunk is as large as the binlog.
	props.BufferedStreamEnabled = true
	props.BufferSize = readBufferSize
	pf, err := file.NewParquetReader(f.Payload(r, 0), file.WithReadProps(props))
	if err != nil {
		return nil, fmt.Errorf("payload is not a valid Parquet file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			pf.Close()
		}
	}()
	if pf.MetaData().Schema.NumColumns() < 1 {
		return nil, fmt.Errorf("Parquet payload has no columns")
	}
	if err := CheckChunkBounds(pf, f.Events[0].PayloadLength); err != nil {
		return nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(batchRows)}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("Parquet payload: %w", err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("Parquet payload schema: %w", err)
	}
	if sc.NumFields() < 1 {
		return nil, fmt.Errorf("Parquet payload has no columns")
	}
	got := sc.Field(0).Type
	if err := checkColumnType(field, want, got); err != nil {
		return nil, err
	}
	rr, err := fr.GetRecordReader(context.Background(), []int{0}, nil)
	if err != nil {
		return nil, fmt.Errorf("Parquet payload column 0: %w", err)
	}
	ok = true
	return &InsertReader{field: field, desc: d, rows: pf.NumRows(), pf: pf, rr: rr}, nil
}

// CheckChunkBounds rejects column chunks of any column that claim bytes
// outside the payloadLen-byte Parquet file: the Parquet reader would
// otherwise allocate whatever the footer claims before noticing the read
// falls short. storage/packed checks its multi-column files with it too.
func CheckChunkBounds(pf *file.Reader, payloadLen int64) error {
	md := pf.MetaData()
	for i := 0; i < md.NumRowGroups(); i++ {
		rg := md.RowGroup(i)
		if rg.NumRows() < 0 {
			return fmt.Errorf("Parquet row group %d has negative row count %d", i, rg.NumRows())
		}
		for c := 0; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return fmt.Errorf("Parquet row group %d column %d: %w", i, c, err)
			}
			start, n := cc.DataPageOffset(), cc.TotalCompressedSize()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
				start = cc.DictionaryPageOffset()
			}
			if start < 0 || n < 0 || start > payloadLen || n > payloadLen-start {
				return fmt.Errorf("Parquet row group %d column %d chunk [offset %d, %d bytes] lies outside the %d-byte payload",
					i, c, start, n, payloadLen)
			}
		}
	}
	return nil
}

func checkColumnType(field *schemapb.FieldSchema, want, got arrow.DataType) error {
	if arrow.TypeEqual(want, got) {
		return nil
	}
	wf, wok := want.(*arrow.FixedSizeBinaryType)
	gf, gok := got.(*arrow.FixedSizeBinaryType)
	if wok && gok {
		return fmt.Errorf("field %d (%s) %s: payload vector width %d bytes does not match dim-derived width %d",
			field.GetFieldID(), field.GetName(), field.GetDataType(), gf.ByteWidth, wf.ByteWidth)
	}
	return fmt.Errorf("Parquet column 0 has Arrow type %s, field %d (%s) of type %s needs %s",
		got, field.GetFieldID(), field.GetName(), field.GetDataType(), want)
}

// Descriptor returns the binlog's descriptor.
func (ir *InsertReader) Descriptor() Descriptor { return ir.desc }

// NumRows returns the row count recorded in the Parquet footer.
func (ir *InsertReader) NumRows() int64 { return ir.rows }

// Next returns the next batch of at most batchRows rows; the caller owns it
// and must Release it. It returns io.EOF after the last batch. A payload that
// fails to decode yields an error naming the key.
func (ir *InsertReader) Next() (col arrow.Array, err error) {
	if ir.done {
		return nil, io.EOF
	}
	defer func() {
		if recoverInto(&err, ir.key, recover()) {
			ir.done, col = true, nil
		}
	}()
	if !ir.rr.Next() {
		ir.done = true
		if err := ir.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("binlog %q: decoding Parquet payload: %w", ir.key, err)
		}
		return nil, io.EOF
	}
	rec := ir.rr.RecordBatch()
	col = rec.Column(0)
	if col.NullN() > 0 && !ir.field.GetNullable() && !ir.desc.Nullable() {
		ir.done = true
		return nil, fmt.Errorf("binlog %q: field %d (%s) is not nullable but the payload holds %d nulls",
			ir.key, ir.field.GetFieldID(), ir.field.GetName(), col.NullN())
	}
	col.Retain()
	return col, nil
}

// Close releases the reader's resources.
func (ir *InsertReader) Close() error {
	ir.done = true
	if ir.rr != nil {
		ir.rr.Release()
		ir.rr = nil
	}
	if ir.pf != nil {
		err := ir.pf.Close()
		ir.pf = nil
		return err
	}
	return nil
}

// recoverInto turns a panic inside the Parquet library (malformed input it
// does not validate) into an error naming key.
func recoverInto(err *error, key string, p any) bool {
	if p != nil {
		*err = fmt.Errorf("binlog %q: malformed Parquet payload (decoder panic: %v)", key, p)
		return true
	}
	return false
}
