package packed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

	"github.com/compacthost/compacthost/storage/corrupt"
)

// sysFields are a pk and the two system fields: group 0 of the default split.
var sysFields = []*schemapb.FieldSchema{
	{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
	{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
	{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
}

// rawColumn describes one column of a hand-made file.
type rawColumn struct {
	name     string
	id       int64 // < 0: no field_id
	typ      arrow.DataType
	nullable bool
	nulls    bool // every third row null
}

// rawFile writes a Parquet file with arrow-go directly: the given columns,
// one row group per entry of rowGroups, and exactly the key-value pairs kv.
func rawFile(t testing.TB, cols []rawColumn, rowGroups []int, codec compress.Compression, kv ...[2]string) []byte {
	t.Helper()
	afs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		afs[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: c.nullable}
		if c.id >= 0 {
			afs[i].Metadata = arrow.NewMetadata([]string{fieldIDKey}, []string{strconv.FormatInt(c.id, 10)})
		}
	}
	sc := arrow.NewSchema(afs, nil)
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithStats(codec != compress.Codecs.Uncompressed))
	fw, err := pqarrow.NewFileWriter(sc, &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	base := 0
	for _, n := range rowGroups {
		arrs := make([]arrow.Array, len(cols))
		for i, c := range cols {
			b := array.NewBuilder(memory.DefaultAllocator, c.typ)
			for r := base; r < base+n; r++ {
				switch {
				case c.nulls && r%3 == 0:
					b.AppendNull()
				case c.typ.ID() == arrow.STRING:
					b.(*array.StringBuilder).Append("v" + strconv.Itoa(r))
				default:
					b.(*array.Int64Builder).Append(int64(r) * 10)
				}
			}
			arrs[i] = b.NewArray()
			b.Release()
		}
		rec := array.NewRecordBatch(sc, arrs, int64(n))
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		release(arrs)
		base += n
	}
	for _, p := range kv {
		if err := fw.AppendKeyValueMetadata(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	i64       = arrow.PrimitiveTypes.Int64
	sysCols   = []rawColumn{{"pk", 100, i64, false, false}, {"RowID", 0, i64, false, false}, {"Timestamp", 1, i64, false, false}}
	goodList  = [2]string{KeyGroupFieldIDList, "100,0,1;101"}
	goodRGM   = [2]string{KeyRowGroupMetadata, "240|10|0;120|5|10"}
	goodVer   = [2]string{KeyStorageVersion, "1.0.0"}
	twoGroups = []int{10, 5}
)

func TestRawFileAccepted(t *testing.T) {
	b := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodRGM, goodVer)
	got, rd := readAll(t, "ok", b, sysFields, ReaderOptions{})
	defer release(got)
	if got[0].Len() != 15 || rd.Footer().StorageVersion != "1.0.0" || rd.Footer().Legacy {
		t.Fatalf("%d rows, footer %+v", got[0].Len(), rd.Footer())
	}
}

// Files from 2.6 pre-release builds: row_group_size (raw little-endian
// sizes) instead of row_group_metadata and storage_version, uncompressed,
// no statistics, the legacy split (every scalar in group 0).
func TestLegacyFile(t *testing.T) {
	fields := append([]*schemapb.FieldSchema{{FieldID: 102, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true}}, sysFields...)
	cols := append([]rawColumn{{"title", 102, arrow.BinaryTypes.String, true, true}}, sysCols...)
	b := rawFile(t, cols, []int{4, 7, 2}, compress.Codecs.Uncompressed,
		[2]string{KeyGroupFieldIDList, "102,100,0,1;101"},
		[2]string{KeyLegacyRowGroupSize, legacyRowGroupSize(100, 70, 20)})
	got, rd := readAll(t, "legacy", b, fields, ReaderOptions{Fields: []int64{1, 102}})
	defer release(got)
	ft := rd.Footer()
	if !ft.Legacy || ft.StorageVersion != "" || FormatRowGroupMetadata(ft.RowGroups) != "100|4|0;70|7|4;20|2|11" {
		t.Fatalf("footer %+v", ft)
	}
	if got[0].Len() != 13 || got[0].(*array.Int64).Value(12) != 120 || got[1].NullN() != 5 || got[1].(*array.String).Value(4) != "v4" {
		t.Fatalf("read %v %v", got[0], got[1])
	}
}

func TestCorruptFiles(t *testing.T) {
	zstd := compress.Codecs.Zstd
	strPK := []rawColumn{{"pk", 100, arrow.BinaryTypes.String, false, false}, sysCols[1], sysCols[2]}
	nullPK := []rawColumn{{"pk", 100, i64, true, true}, sysCols[1], sysCols[2]}
	noID := []rawColumn{{"pk", -1, i64, false, false}, sysCols[1], sysCols[2]}
	foreign := []rawColumn{{"pk", 555, i64, false, false}, sysCols[1], sysCols[2]}
	valid := rawFile(t, sysCols, twoGroups, zstd, goodList, goodRGM, goodVer)
	for _, tc := range []struct {
		name string
		b    []byte
		frag string
	}{
		{"no key-value metadata", rawFile(t, sysCols, twoGroups, zstd), "footer has no group_field_id_list"},
		{"no row group entries", rawFile(t, sysCols, twoGroups, zstd, goodList, goodVer),
			"footer has neither row_group_metadata nor the legacy row_group_size"},
		{"no storage_version", rawFile(t, sysCols, twoGroups, zstd, goodList, goodRGM),
			"footer has row_group_metadata but no storage_version"},
		{"row group count", rawFile(t, sysCols, twoGroups, zstd, goodList, goodVer, [2]string{KeyRowGroupMetadata, "240|15|0"}),
			"row_group_metadata lists 1 row groups, the Parquet footer has 2"},
		{"row count", rawFile(t, sysCols, twoGroups, zstd, goodList, goodVer, [2]string{KeyRowGroupMetadata, "240|10|0;120|6|10"}),
			"row_group_metadata entry 1 says 6 rows at offset 10, Parquet row group 1 has 5 rows at offset 10"},
		{"row offset", rawFile(t, sysCols, twoGroups, zstd, goodList, goodVer, [2]string{KeyRowGroupMetadata, "240|10|0;120|5|0"}),
			"row_group_metadata entry 1 says 5 rows at offset 0, Parquet row group 1 has 5 rows at offset 10"},
		{"malformed row_group_metadata", rawFile(t, sysCols, twoGroups, zstd, goodList, goodVer, [2]string{KeyRowGroupMetadata, "240,10,0;120|5|10"}),
			`row_group_metadata entry "240,10,0" does not have 3 |-separated parts`},
		{"legacy sizes", rawFile(t, sysCols, twoGroups, zstd, goodList, [2]string{KeyLegacyRowGroupSize, legacyRowGroupSize(1)}),
			"row_group_size holds 8 bytes, want 8 per row group (2 row groups)"},
		{"columns not a listed group", rawFile(t, sysCols, twoGroups, zstd, [2]string{KeyGroupFieldIDList, "100,0;1;101"}, goodRGM, goodVer),
			"the file's columns (field IDs [100 0 1]) are not one of the groups of group_field_id_list [[100 0] [1] [101]]"},
		{"columns out of list order", rawFile(t, sysCols, twoGroups, zstd, [2]string{KeyGroupFieldIDList, "0,100,1;101"}, goodRGM, goodVer),
			"are not one of the groups of group_field_id_list"},
		{"bad list token", rawFile(t, sysCols, twoGroups, zstd, [2]string{KeyGroupFieldIDList, "100,0,1;1o1"}, goodRGM, goodVer),
			`group_field_id_list: "1o1" is not a field ID`},
		{"contradictory duplicate key", rawFile(t, sysCols, twoGroups, zstd, goodList, goodRGM, goodVer, [2]string{KeyStorageVersion, "2.0.0"}),
			`footer key "storage_version" appears twice with different values`},
		{"no field_id", rawFile(t, noID, twoGroups, zstd, goodList, goodRGM, goodVer), `column 0 ("pk") has no field_id`},
		{"field_id not in schema", rawFile(t, foreign, twoGroups, zstd, [2]string{KeyGroupFieldIDList, "555,0,1"}, goodRGM, goodVer),
			"column 0 has field_id 555, which is not in the schema"},
		{"wrong type", rawFile(t, strPK, twoGroups, zstd, goodList, goodRGM, goodVer),
			"column 0 (field 100, pk) has Arrow type utf8, the schema's Int64 needs int64"},
		{"not Parquet", bytes.Repeat([]byte("x"), 40), `file ends in "xxxx", not the Parquet magic PAR1`},
		{"too short", []byte("PAR1PAR1"), "8 bytes is too short for a Parquet file"},
		{"truncated", append(append([]byte{}, valid[:len(valid)/2]...), valid[len(valid)-8:]...), "not a valid Parquet file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader("bad/key", bytes.NewReader(tc.b), int64(len(tc.b)), sysFields, ReaderOptions{})
			if err == nil {
				t.Fatalf("opened; want %q", tc.frag)
			}
			if !strings.Contains(err.Error(), tc.frag) || !strings.HasPrefix(err.Error(), `packed file "bad/key": `) {
				t.Errorf("got %q, want %q naming the key", err, tc.frag)
			}
			if !errors.Is(err, corrupt.Err) {
				t.Errorf("not marked corrupt: %v", err)
			}
		})
	}

	t.Run("nulls in a non-nullable field", func(t *testing.T) {
		b := rawFile(t, nullPK, twoGroups, zstd, goodList, goodRGM, goodVer)
		rd, err := NewReader("bad/key", bytes.NewReader(b), int64(len(b)), sysFields, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		_, err = rd.Next()
		if err == nil || !errors.Is(err, corrupt.Err) ||
			err.Error() != `packed file "bad/key": field 100 (pk) is not nullable but row group 0 holds 4 nulls` {
			t.Fatalf("got %v", err)
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("after an error: %v, want io.EOF", err)
		}
	})

	t.Run("encrypted footer", func(t *testing.T) {
		b := append(append([]byte{}, valid[:len(valid)-4]...), "PARE"...)
		_, err := NewReader("bad/key", bytes.NewReader(b), int64(len(b)), sysFields, ReaderOptions{})
		if err == nil || errors.Is(err, corrupt.Err) || !strings.Contains(err.Error(), "encrypted collections are not supported") {
			t.Fatalf("got %v; want an unsupported (not corrupt) error", err)
		}
	})
}

func TestReadLayout(t *testing.T) {
	b := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodRGM, goodVer)
	l, err := ReadLayout("ok", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%v %v %d %v %s %s", l.FieldIDs, l.Names, l.Rows, l.Groups, FormatRowGroupMetadata(l.RowGroups), l.StorageVersion) !=
		"[100 0 1] [pk RowID Timestamp] 15 [[100 0 1] [101]] 240|10|0;120|5|10 1.0.0" {
		t.Fatalf("layout %+v", l)
	}
	if fmt.Sprintf("%v %v", l.Types, l.Nullable) != "[int64 int64 int64] [false false false]" ||
		len(l.ParquetRowGroups) != 2 || l.ParquetRowGroups[0].Rows != 10 || l.ParquetRowGroups[1].Rows != 5 ||
		l.ParquetRowGroups[0].CompressedBytes <= 0 || l.ParquetRowGroups[0].UncompressedBytes <= 0 {
		t.Fatalf("layout types %v, nullable %v, row groups %+v", l.Types, l.Nullable, l.ParquetRowGroups)
	}
	bad := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodVer)
	if _, err := ReadLayout("bad", bytes.NewReader(bad), int64(len(bad))); err == nil || !errors.Is(err, corrupt.Err) ||
		err.Error() != `packed file "bad": footer has neither row_group_metadata nor the legacy row_group_size` {
		t.Fatalf("got %v", err)
	}
}

// A schema this package cannot map says nothing against the file.
func TestUnsupportedSchemaIsNotCorrupt(t *testing.T) {
	b := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodRGM, goodVer)
	fields := []*schemapb.FieldSchema{{FieldID: 100, Name: "pk", DataType: schemapb.DataType_ArrayOfVector}, sysFields[1], sysFields[2]}
	_, err := NewReader("k", bytes.NewReader(b), int64(len(b)), fields, ReaderOptions{})
	if err == nil || errors.Is(err, corrupt.Err) || !strings.Contains(err.Error(), "is not supported") {
		t.Fatalf("got %v", err)
	}
}

// Projection decodes only the requested columns: a damaged RowID chunk
// does not stop a pk-only read, and fails a read that asks for RowID.
func TestProjectionSkipsOtherColumns(t *testing.T) {
	b := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodRGM, goodVer)
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pf.MetaData().RowGroup(0).ColumnChunk(1)
	if err != nil {
		t.Fatal(err)
	}
	start := cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
		start = min(start, cc.DictionaryPageOffset())
	}
	pf.Close()
	for i := start; i < start+cc.TotalCompressedSize(); i++ {
		b[i] = 0xFF
	}
	got, _ := readAll(t, "k", b, sysFields, ReaderOptions{Fields: []int64{100, 1}})
	release(got)

	rd, err := NewReader("k", bytes.NewReader(b), int64(len(b)), sysFields, ReaderOptions{Fields: []int64{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, err := rd.Next(); err == nil || !errors.Is(err, corrupt.Err) || !strings.HasPrefix(err.Error(), `packed file "k": `) {
		t.Fatalf("damaged RowID: %v", err)
	}
}
