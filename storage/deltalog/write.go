package deltalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/tso"
)

// MultiFieldVersion is the descriptor extras "version" value of FormatMultiField.
const MultiFieldVersion = "MULTI_FIELD"

// Meta identifies the segment a deltalog belongs to.
type Meta struct {
	CollectionID, PartitionID, SegmentID int64
	// Timestamp is the informational header timestamp (Milvus: the writer's
	// creation time as a hybrid TS); zero means now.
	Timestamp uint64
}

// Written reports what Write produced; it carries the Binlog metadata fields
// (log_size, memory_size, entries_num, timestamp_from, timestamp_to).
type Written struct {
	Bytes        int64  // object size
	MemorySize   int64  // Deletes.MemorySize
	Rows         int64  // delete records
	MinTS, MaxTS uint64 // smallest and largest delete timestamp
}

// Write encodes d as one deltalog object in format f and writes it to w.
//
// FormatJSON follows DeleteCodec: payload type String, FieldID -1, descriptor
// and event start/end = min/max delete ts, extras original_size = total bytes of
// the JSON rows, a non-null string column "val" compressed with ZSTD level 3 and
// no dictionary. FormatMultiField follows Milvus's multi-field stream writer:
// payload type Int64, extras version MULTI_FIELD and original_size = MemorySize,
// descriptor start/end 0, event start/end 1/1, uncompressed columns pk and ts.
//
// d must be non-empty with non-zero timestamps below 2^63 (they are stored as
// Int64 in the multi-field format and Milvus refuses zero event timestamps).
// Row order is kept.
func Write(w io.Writer, meta Meta, d *Deletes, f Format) (Written, error) {
	if err := d.check(); err != nil {
		return Written{}, fmt.Errorf("deltalog write: %w", err)
	}
	if d.Len() == 0 {
		return Written{}, fmt.Errorf("deltalog write: no deletes")
	}
	lo, hi := d.tsRange()
	if lo == 0 || hi > 1<<63-1 {
		return Written{}, fmt.Errorf("deltalog write: delete timestamps span %d..%d, want 1..2^63-1", lo, hi)
	}
	hdrTS := meta.Timestamp
	if hdrTS == 0 {
		hdrTS = tso.FromTime(time.Now())
	}
	desc := binlog.Descriptor{
		Timestamp: hdrTS, CollectionID: meta.CollectionID, PartitionID: meta.PartitionID,
		SegmentID: meta.SegmentID, FieldID: -1,
	}
	ev := binlog.Event{Type: binlog.DeleteEvent, Timestamp: hdrTS}
	var (
		payload bytes.Buffer
		err     error
	)
	switch f {
	case FormatJSON:
		var orig int64
		orig, err = encodeJSONPayload(&payload, d)
		desc.PayloadType = schemapb.DataType_String
		desc.StartTimestamp, desc.EndTimestamp = lo, hi
		desc.SetOriginalSize(orig)
		ev.StartTimestamp, ev.EndTimestamp = lo, hi
	case FormatMultiField:
		err = encodeMultiFieldPayload(&payload, d)
		desc.PayloadType = schemapb.DataType_Int64
		desc.SetOriginalSize(d.MemorySize())
		desc.Extras[binlog.ExtraVersion] = MultiFieldVersion
		ev.StartTimestamp, ev.EndTimestamp = 1, 1
	default:
		return Written{}, fmt.Errorf("deltalog write: unknown format %v", f)
	}
	if err != nil {
		return Written{}, fmt.Errorf("deltalog write %v: %w", f, err)
	}
	n, err := binlog.WriteFile(w, desc, ev, payload.Bytes())
	if err != nil {
		return Written{Bytes: n}, fmt.Errorf("deltalog write: %w", err)
	}
	return Written{Bytes: n, MemorySize: d.MemorySize(), Rows: int64(d.Len()), MinTS: lo, MaxTS: hi}, nil
}

// appendJSONRow appends the JSON row Milvus's DeleteLog serializes to, with keys
// pk, ts, pkType in that order. VarChar pks are escaped as encoding/json does.
func appendJSONRow(dst []byte, d *Deletes, i int) []byte {
	dst = append(dst, `{"pk":`...)
	if d.PKType == schemapb.DataType_VarChar {
		dst = appendJSONString(dst, d.StrPKs[i])
	} else {
		dst = strconv.AppendInt(dst, d.IntPKs[i], 10)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendUint(dst, d.Timestamps[i], 10)
	dst = append(dst, `,"pkType":`...)
	dst = strconv.AppendInt(dst, int64(d.PKType), 10)
	return append(dst, '}')
}

// appendJSONString quotes s; plain printable ASCII without HTML-sensitive or
// escape characters is copied directly, anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func encodeJSONPayload(w io.Writer, d *Deletes) (int64, error) {
	bld := array.NewStringBuilder(memory.DefaultAllocator)
	defer bld.Release()
	bld.Reserve(d.Len())
	var (
		row  []byte
		orig int64
	)
	for i := 0; i < d.Len(); i++ {
		row = appendJSONRow(row[:0], d, i)
		orig += int64(len(row))
		bld.BinaryBuilder.Append(row)
	}
	col := bld.NewArray()
	defer col.Release()
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(1<<30),
	)
	sc := arrow.NewSchema([]arrow.Field{{Name: "val", Type: arrow.BinaryTypes.String}}, nil)
	return orig, writeParquet(w, sc, []arrow.Array{col}, props)
}

func encodeMultiFieldPayload(w io.Writer, d *Deletes) error {
	mem := memory.DefaultAllocator
	var pk arrow.Array
	if d.PKType == schemapb.DataType_VarChar {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.AppendValues(d.StrPKs, nil)
		pk = b.NewArray()
	} else {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(d.IntPKs, nil)
		pk = b.NewArray()
	}
	defer pk.Release()
	tb := array.NewInt64Builder(mem)
	defer tb.Release()
	tb.Reserve(d.Len())
	for _, ts := range d.Timestamps {
		tb.UnsafeAppend(int64(ts))
	}
	ts := tb.NewArray()
	defer ts.Release()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "pk", Type: pk.DataType()},
		{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(1 << 30))
	return writeParquet(w, sc, []arrow.Array{pk, ts}, props)
}

func writeParquet(w io.Writer, sc *arrow.Schema, cols []arrow.Array, props *parquet.WriterProperties) error {
	fw, err := pqarrow.NewFileWriter(sc, w, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("parquet writer: %w", err)
	}
	rec := array.NewRecordBatch(sc, cols, int64(cols[0].Len()))
	defer rec.Release()
	if err := fw.WriteBuffered(rec); err != nil {
		fw.Close()
		return fmt.Errorf("parquet write: %w", err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("parquet close: %w", err)
	}
	return nil
}
