package binlog

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
	MemorySize int64 // Milvus' uncompressed size; also stored as original_size
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
	want, err := ArrowType(f)
	if err != nil {
		return err
	}
	if !arrow.TypeEqual(want, col.DataType()) {
		return fmt.Errorf("field %d (%s): column type %s, want %s for %s",
			f.GetFieldID(), f.GetName(), col.DataType(), want, f.GetDataType())
	}
	if col.NullN() > 0 && !f.GetNullable() {
		return fmt.Errorf("field %d (%s): column has %d nulls but the field is not nullable",
			f.GetFieldID(), f.GetName(), col.NullN())
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: strconv.FormatInt(f.GetFieldID(), 10), Type: want, Nullable: true}}, nil)
	fw, err := pqarrow.NewFileWriter(sc, w, opts.parquetProps(f), pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("field %d: parquet writer: %w", f.GetFieldID(), err)
	}
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, int64(col.Len()))
	defer rec.Release()
	if err := fw.WriteBuffered(rec); err != nil {
		fw.Close()
		return fmt.Errorf("field %d: parquet write: %w", f.GetFieldID(), err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("field %d: parquet close: %w", f.GetFieldID(), err)
	}
	return nil
}

// EncodeInsert writes one insert binlog for field holding col. From d it
// keeps the IDs, timestamps and any extras; it sets FieldID and PayloadType
// from field, "original_size" to MemorySize(col, field) and "nullable" to the
// field's flag. The insert event's start/end timestamps are d's when set,
// else 1 and 1 (what Milvus' streaming writers store). The object is built in
// memory (the event length precedes the payload) and then written to w.
func EncodeInsert(w io.Writer, d Descriptor, field *schemapb.FieldSchema, col arrow.Array, opts WriterOptions) (Written, error) {
	var payload bytes.Buffer
	if err := EncodeParquet(&payload, field, col, opts); err != nil {
		return Written{}, fmt.Errorf("binlog encode: %w", err)
	}
	mem := MemorySize(col, field)
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
	n, err := WriteFile(w, d, ev, payload.Bytes())
	if err != nil {
		return Written{Bytes: n}, err
	}
	return Written{Bytes: n, MemorySize: mem, Rows: int64(col.Len())}, nil
}
