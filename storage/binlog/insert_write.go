package binlog

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// WriterOptions tunes the Parquet payload. The zero value matches Milvus'
// record writer (serde.go singleFieldRecordWriter): ZSTD level 3, dictionary
// encoding on except for the primary key, one row group per file.
type WriterOptions struct {
	// Compression overrides the codec (e.g. compress.Codecs.Uncompressed for
	// vectors). nil means ZSTD.
	Compression *compress.Compression
	// CompressionLevel applies to ZSTD/GZIP/Brotli; 0 means 3 (Milvus' level).
	CompressionLevel int
	// DisableDictionary turns dictionary encoding off, as Milvus always does
	// for the primary key (useful for vectors, where it never pays off).
	DisableDictionary bool
	// MaxRowGroupRows caps the rows per Parquet row group; 0 means one row
	// group for the whole column, as Milvus writes. Smaller groups bound the
	// reader's memory.
	MaxRowGroupRows int64
}

// Written reports what EncodeInsert wrote.
type Written struct {
	Bytes      int64 // size of the binlog object
	MemorySize int64 // Milvus's memory_size (MemorySize); also stored as original_size
	Rows       int64
}

func (o WriterOptions) parquetProps(f *schemapb.FieldSchema) *parquet.WriterProperties {
	codec := compress.Codecs.Zstd
	if o.Compression != nil {
		codec = *o.Compression
	}
	level := o.CompressionLevel
	if level == 0 {
		level = 3
	}
	rg := o.MaxRowGroupRows
	if rg <= 0 {
		rg = 1<<63 - 1
	}
	props := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(rg),
	}
	if codec != compress.Codecs.Uncompressed && codec != compress.Codecs.Snappy {
		props = append(props, parquet.WithCompressionLevel(level))
	}
	if o.DisableDictionary || f.GetIsPrimaryKey() {
		props = append(props, parquet.WithDictionaryDefault(false))
	}
	return parquet.NewWriterProperties(props...)
}

// EncodeParquet writes col as the single-column Parquet payload Milvus'
// record writer produces: the column is named by the decimal field ID and
// declared nullable; Arrow schema metadata is not stored.
func EncodeParquet(w io.Writer, f *schemapb.FieldSchema, col arrow.Array, opts WriterOptions) error {
	var buf bytes.Buffer
	if err := encodeParquet(&buf, f, []arrow.Array{col}, opts); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// encodeParquet appends the chunks, in order, as one column's Parquet file
// to buf. Pages go to buf as they are compressed (an unbuffered row group),
// so nothing but the compressor's current page is held besides buf. The file
// is whole in buf so that its footer can be made deterministic
// (SortEncodingStats) before anyone sees it.
func encodeParquet(buf *bytes.Buffer, f *schemapb.FieldSchema, chunks []arrow.Array, opts WriterOptions) error {
	start := buf.Len()
	want, err := ArrowType(f)
	if err != nil {
		return err
	}
	var rows int64
	for _, col := range chunks {
		if !arrow.TypeEqual(want, col.DataType()) {
			return fmt.Errorf("field %d (%s): column type %s, want %s for %s",
				f.GetFieldID(), f.GetName(), col.DataType(), want, f.GetDataType())
		}
		if col.NullN() > 0 && !f.GetNullable() {
			return fmt.Errorf("field %d (%s): column has %d nulls but the field is not nullable",
				f.GetFieldID(), f.GetName(), col.NullN())
		}
		rows += int64(col.Len())
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: strconv.FormatInt(f.GetFieldID(), 10), Type: want, Nullable: true}}, nil)
	props := opts.parquetProps(f)
	fw, err := pqarrow.NewFileWriter(sc, buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("field %d: parquet writer: %w", f.GetFieldID(), err)
	}
	chunked := arrow.NewChunked(want, chunks)
	defer chunked.Release()
	group := props.MaxRowGroupLength()
	for off := int64(0); off < rows || off == 0; off += group {
		if err := fw.NewRowGroupChecked(); err != nil {
			fw.Close()
			return fmt.Errorf("field %d: parquet row group: %w", f.GetFieldID(), err)
		}
		if err := fw.WriteColumnChunked(chunked, off, min(group, rows-off)); err != nil {
			fw.Close()
			return fmt.Errorf("field %d: parquet write: %w", f.GetFieldID(), err)
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("field %d: parquet close: %w", f.GetFieldID(), err)
	}
	if err := SortEncodingStats(buf.Bytes()[start:]); err != nil {
		return fmt.Errorf("field %d: %w", f.GetFieldID(), err)
	}
	return nil
}

// EncodeInsert writes one insert binlog for field holding col. From d it
// keeps the IDs, timestamps and any extras; it sets FieldID and PayloadType
// from field, "original_size" to MemorySize(col) and "nullable" to the
// field's flag. The insert event's start/end timestamps are d's when set,
// else 1 and 1 (what Milvus' streaming writers store). The payload is built
// in memory (the event length precedes it) and then written to w.
func EncodeInsert(w io.Writer, d Descriptor, field *schemapb.FieldSchema, col arrow.Array, opts WriterOptions) (Written, error) {
	e, err := EncodeInsertChunks(d, field, []arrow.Array{col}, opts)
	if err != nil {
		return Written{}, err
	}
	n, err := w.Write(e.Header)
	if err != nil {
		return Written{Bytes: int64(n)}, fmt.Errorf("binlog write: %w", err)
	}
	m, err := w.Write(e.Payload)
	if err != nil {
		return Written{Bytes: int64(n + m)}, fmt.Errorf("binlog write payload: %w", err)
	}
	return e.Written, nil
}

// Encoded is an insert binlog held as its container header and its Parquet
// payload: the object is Header followed by Payload.
type Encoded struct {
	Header, Payload []byte
	Written
}

// Reader returns the object's bytes, without joining header and payload.
func (e *Encoded) Reader() io.Reader {
	return io.MultiReader(bytes.NewReader(e.Header), bytes.NewReader(e.Payload))
}

// EncodeInsertChunks is EncodeInsert for a column given as chunks (written
// in order as one column, without concatenating them) and returning the
// object instead of writing it. The payload buffer is sized up front from
// the chunks' MemorySize, so a column that does not compress (vectors) is
// encoded without the buffer ever growing.
func EncodeInsertChunks(d Descriptor, field *schemapb.FieldSchema, chunks []arrow.Array, opts WriterOptions) (*Encoded, error) {
	mem := MemorySizeChunks(chunks)
	var rows int64
	for _, c := range chunks {
		rows += int64(c.Len())
	}
	// Parquet adds page headers, statistics and a footer; a dictionary
	// attempt on unique values adds a little more. Too small costs a growth.
	payload := bytes.NewBuffer(make([]byte, 0, mem+mem/32+16<<10))
	if err := encodeParquet(payload, field, chunks, opts); err != nil {
		return nil, fmt.Errorf("binlog encode: %w", err)
	}
	d.FieldID = field.GetFieldID()
	d.PayloadType = field.GetDataType()
	d.Extras = maps.Clone(d.Extras)
	d.SetOriginalSize(mem)
	d.Extras[ExtraNullable] = field.GetNullable()
	ev := Event{Type: InsertEvent, Timestamp: d.Timestamp, StartTimestamp: d.StartTimestamp, EndTimestamp: d.EndTimestamp}
	if ev.StartTimestamp == 0 {
		ev.StartTimestamp = 1
	}
	if ev.EndTimestamp == 0 {
		ev.EndTimestamp = 1
	}
	header, err := FileHeader(d, ev, int64(payload.Len()))
	if err != nil {
		return nil, err
	}
	e := &Encoded{Header: header, Payload: payload.Bytes()}
	e.Written = Written{Bytes: int64(len(header) + len(e.Payload)), MemorySize: mem, Rows: rows}
	return e, nil
}
