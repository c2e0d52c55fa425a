package binlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

var baseDesc = Descriptor{Timestamp: 42, CollectionID: 1, PartitionID: 2, SegmentID: 3}

func encode(t testing.TB, f *schemapb.FieldSchema, col arrow.Array, opts WriterOptions) ([]byte, Written) {
	t.Helper()
	var buf bytes.Buffer
	w, err := EncodeInsert(&buf, baseDesc, f, col, opts)
	if err != nil {
		t.Fatal(err)
	}
	if w.Bytes != int64(buf.Len()) {
		t.Fatalf("Written.Bytes %d, buffer %d", w.Bytes, buf.Len())
	}
	return buf.Bytes(), w
}

// readAll decodes every batch and concatenates them.
func readAll(t testing.TB, key string, b []byte, f *schemapb.FieldSchema, batch int) (arrow.Array, *InsertReader, int) {
	t.Helper()
	ir, err := NewInsertReader(key, bytes.NewReader(b), int64(len(b)), f, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer ir.Close()
	var parts []arrow.Array
	for {
		c, err := ir.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if batch > 0 && c.Len() > batch {
			t.Fatalf("batch of %d rows, limit %d", c.Len(), batch)
		}
		parts = append(parts, c)
	}
	typ, _ := ArrowType(f)
	if len(parts) == 0 {
		return array.MakeArrayOfNull(memory.DefaultAllocator, typ, 0), ir, 0
	}
	out, err := array.Concatenate(parts, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		p.Release()
	}
	return out, ir, len(parts)
}

func TestInsertRoundTripAllTypes(t *testing.T) {
	for _, nullable := range []bool{false, true} {
		for _, f := range allTypes(nullable) {
			for _, n := range []int{0, 1, 1000} {
				name := f.GetDataType().String() + "/dim" + strconv.Itoa(func() int { d, _ := Dim(f); return d }()) +
					"/nullable=" + strconv.FormatBool(nullable) + "/rows=" + strconv.Itoa(n)
				t.Run(name, func(t *testing.T) {
					col := makeColumn(t, f, n, nullable)
					defer col.Release()
					if nullable && n >= 3 && col.NullN() == 0 {
						t.Fatal("test column has no nulls")
					}
					b, w := encode(t, f, col, WriterOptions{})
					if w.Rows != int64(n) || w.MemorySize != MemorySize(col) {
						t.Fatalf("Written %+v", w)
					}
					got, ir, _ := readAll(t, "insert_log/1/2/3/x/1", b, f, 256)
					defer got.Release()
					if !array.Equal(col, got) {
						t.Fatalf("round trip differs:\nwant %v\ngot  %v", col, got)
					}
					d := ir.Descriptor()
					if ir.NumRows() != int64(n) || d.FieldID != f.GetFieldID() || d.PayloadType != f.GetDataType() ||
						d.CollectionID != 1 || d.PartitionID != 2 || d.SegmentID != 3 || d.Nullable() != nullable {
						t.Fatalf("descriptor %+v rows %d", d, ir.NumRows())
					}
					if os, err := d.OriginalSize(); err != nil || os != w.MemorySize {
						t.Fatalf("original_size %d (%v), want %d", os, err, w.MemorySize)
					}
				})
			}
		}
	}
}

// payloadMeta opens the Parquet payload of an encoded binlog.
func payloadMeta(t *testing.T, b []byte) *file.Reader {
	t.Helper()
	f, err := ReadFile("k", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(f.Payload(bytes.NewReader(b), 0))
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestInsertParquetLayoutMatchesMilvus(t *testing.T) {
	pk := testField(100, schemapb.DataType_Int64, 0, false)
	pk.IsPrimaryKey = true
	plain := testField(101, schemapb.DataType_Int64, 0, false)
	vec := testField(102, schemapb.DataType_FloatVector, 4, false)
	for _, c := range []struct {
		f          *schemapb.FieldSchema
		opts       WriterOptions
		dict       bool
		codec      compress.Compression
		width      int
		physical   parquet.Type
		extrasJSON string
	}{
		{pk, WriterOptions{}, false, compress.Codecs.Zstd, 0, parquet.Types.Int64, ""},
		{plain, WriterOptions{}, true, compress.Codecs.Zstd, 0, parquet.Types.Int64, ""},
		{vec, WriterOptions{Compression: &compress.Codecs.Uncompressed, DisableDictionary: true}, false,
			compress.Codecs.Uncompressed, 16, parquet.Types.FixedLenByteArray, ""},
	} {
		col := makeColumn(t, c.f, 100, false)
		b, _ := encode(t, c.f, col, c.opts)
		col.Release()
		pf := payloadMeta(t, b)
		sc := pf.MetaData().Schema
		if sc.NumColumns() != 1 || sc.Column(0).Name() != strconv.FormatInt(c.f.FieldID, 10) {
			t.Fatalf("field %d: column name %q", c.f.FieldID, sc.Column(0).Name())
		}
		if sc.Column(0).SchemaNode().RepetitionType() != parquet.Repetitions.Optional {
			t.Errorf("field %d: column not OPTIONAL", c.f.FieldID)
		}
		if sc.Column(0).PhysicalType() != c.physical || (c.width > 0 && sc.Column(0).TypeLength() != c.width) {
			t.Errorf("field %d: physical %s len %d", c.f.FieldID, sc.Column(0).PhysicalType(), sc.Column(0).TypeLength())
		}
		if pf.NumRowGroups() != 1 {
			t.Errorf("field %d: %d row groups", c.f.FieldID, pf.NumRowGroups())
		}
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		if cc.HasDictionaryPage() != c.dict {
			t.Errorf("field %d: dictionary page %v, want %v", c.f.FieldID, cc.HasDictionaryPage(), c.dict)
		}
		if cc.Compression() != c.codec {
			t.Errorf("field %d: codec %s, want %s", c.f.FieldID, cc.Compression(), c.codec)
		}
		if kv := pf.MetaData().KeyValueMetadata(); kv.FindValue("ARROW:schema") != nil {
			t.Errorf("field %d: ARROW:schema stored; Milvus does not store it", c.f.FieldID)
		}
		pf.Close()
	}
}

func TestInsertExtrasBytes(t *testing.T) {
	f := testField(101, schemapb.DataType_Int32, 0, true)
	col := makeColumn(t, f, 10, true)
	defer col.Release()
	b, w := encode(t, f, col, WriterOptions{})
	want := `{"nullable":true,"original_size":"` + strconv.FormatInt(w.MemorySize, 10) + `"}`
	if !bytes.Contains(b[:200], []byte(want)) {
		t.Fatalf("extras %q not found in header %q", want, b[:120])
	}
	// 10 int32 + validity bitmap of 2 bytes
	if w.MemorySize != 42 {
		t.Fatalf("MemorySize %d, want 42", w.MemorySize)
	}
}

func TestMemorySize(t *testing.T) {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.AppendValues([]string{"ab", "cde", "f"}, nil)
	s := b.NewArray()
	defer s.Release()
	// bitmap 1 + offsets 4×4 + data 6
	if got := MemorySize(s); got != 23 {
		t.Errorf("string MemorySize %d, want 23", got)
	}
	sl := array.NewSlice(s, 1, 3)
	defer sl.Release()
	// bitmap 1 + offsets 3×4 + data 4
	if got := MemorySize(sl); got != 17 {
		t.Errorf("sliced string MemorySize %d, want 17", got)
	}
	vec := testField(3, schemapb.DataType_FloatVector, 768, false)
	v := makeColumn(t, vec, 10, false)
	defer v.Release()
	if got := MemorySize(v); got != 2+10*768*4 {
		t.Errorf("vector MemorySize %d", got)
	}
}

func TestInsertStreamsRowGroups(t *testing.T) {
	f := testField(101, schemapb.DataType_Int64, 0, true)
	col := makeColumn(t, f, 10_000, true)
	defer col.Release()
	b, _ := encode(t, f, col, WriterOptions{MaxRowGroupRows: 3000})
	pf := payloadMeta(t, b)
	if pf.NumRowGroups() != 4 {
		t.Fatalf("%d row groups, want 4", pf.NumRowGroups())
	}
	pf.Close()
	got, ir, batches := readAll(t, "k", b, f, 1024)
	defer got.Release()
	if batches < 10 || ir.NumRows() != 10_000 || !array.Equal(col, got) {
		t.Fatalf("batches %d rows %d equal %v", batches, ir.NumRows(), array.Equal(col, got))
	}
}

func TestEncodeInsertRejects(t *testing.T) {
	f := testField(101, schemapb.DataType_Int64, 0, false)
	nf := testField(101, schemapb.DataType_Int64, 0, true)
	withNulls := makeColumn(t, nf, 5, true)
	defer withNulls.Release()
	wrongType := makeColumn(t, testField(1, schemapb.DataType_Int32, 0, false), 5, false)
	defer wrongType.Release()
	noDim := &schemapb.FieldSchema{FieldID: 9, DataType: schemapb.DataType_FloatVector}
	for _, c := range []struct {
		f    *schemapb.FieldSchema
		col  arrow.Array
		want string
	}{
		{f, withNulls, "not nullable"},
		{f, wrongType, "column type int32, want int64"},
		{noDim, wrongType, `no "dim"`},
		{&schemapb.FieldSchema{DataType: schemapb.DataType_ArrayOfVector}, wrongType, "not supported"},
	} {
		_, err := EncodeInsert(io.Discard, baseDesc, c.f, c.col, WriterOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err %v, want %q", err, c.want)
		}
	}
}

// The legacy payload writer names its column "val" and declares it with the
// field's own nullability; readers take column 0 whatever its name.
func TestInsertReaderLegacyValColumn(t *testing.T) {
	f := testField(101, schemapb.DataType_VarChar, 0, false)
	col := makeColumn(t, f, 10, false)
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "val", Type: arrow.BinaryTypes.String, Nullable: false}}, nil)
	var pq bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &pq, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 10)
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	d := baseDesc
	d.FieldID, d.PayloadType, d.StartTimestamp, d.EndTimestamp = 101, schemapb.DataType_VarChar, 5, 9
	d.SetOriginalSize(100)
	var buf bytes.Buffer
	if _, err := WriteFile(&buf, d, Event{Type: InsertEvent, StartTimestamp: 5, EndTimestamp: 9}, pq.Bytes()); err != nil {
		t.Fatal(err)
	}
	got, ir, _ := readAll(t, "legacy", buf.Bytes(), f, 0)
	defer got.Release()
	if !array.Equal(col, got) || ir.Descriptor().Nullable() {
		t.Fatalf("legacy read: %v nullable=%v", got, ir.Descriptor().Nullable())
	}
}

// Readers share the process-wide ZSTD codec; concurrent use must be safe.
func TestInsertReadersConcurrent(t *testing.T) {
	f := testField(101, schemapb.DataType_FloatVector, 16, true)
	col := makeColumn(t, f, 3000, true)
	defer col.Release()
	b, _ := encode(t, f, col, WriterOptions{MaxRowGroupRows: 500})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			ir, err := NewInsertReader("k", bytes.NewReader(b), int64(len(b)), f, 300)
			if err != nil {
				errs <- err
				return
			}
			defer ir.Close()
			n := 0
			for {
				c, err := ir.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				n += c.Len()
				c.Release()
			}
			if n != 3000 {
				errs <- fmt.Errorf("read %d rows", n)
				return
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Reading the first batch of a multi-row-group file must not touch the other
// row groups: allocations stay near one row group, far below the file size.
func TestInsertReaderMemoryBoundedByRowGroup(t *testing.T) {
	f := testField(101, schemapb.DataType_FloatVector, 256, false) // 1 KiB rows
	col := makeColumn(t, f, 20_000, false)
	raw := compress.Codecs.Uncompressed
	b, _ := encode(t, f, col, WriterOptions{Compression: &raw, DisableDictionary: true, MaxRowGroupRows: 1000})
	col.Release()
	if len(b) < 20_000_000 {
		t.Fatalf("file only %d bytes", len(b))
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ir, err := NewInsertReader("k", bytes.NewReader(b), int64(len(b)), f, 100)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ir.Next()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	c.Release()
	ir.Close()
	// One row group is ~1 MiB of a 20 MiB file; the reader holds the raw
	// column chunk, a page buffer and decoded values, so allow a few copies.
	if got := m1.TotalAlloc - m0.TotalAlloc; got > 8<<20 {
		t.Fatalf("first batch allocated %d bytes; file is %d bytes", got, len(b))
	} else {
		t.Logf("first batch allocated %d bytes; file is %d bytes", got, len(b))
	}
}
