package packed

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
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

// segmentFiles writes every group of the schema's default split from the
// same rows, in batches of the given sizes, with small row groups.
func segmentFiles(t *testing.T, s *schemapb.CollectionSchema, batches ...int) ([]Group, map[int64][]byte, map[int64]Info) {
	t.Helper()
	groups, err := SplitGroups(s, DefaultSplitPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	files, infos := map[int64][]byte{}, map[int64]Info{}
	for _, g := range groups {
		files[g.ID], infos[g.ID] = writeGroup(t, groups, g, AllFields(s), WriterOptions{RowGroupBytes: 2 << 10}, batches...)
	}
	return groups, files, infos
}

func TestRoundTripEveryType(t *testing.T) {
	batches := []int{1, 300, 0, 77}
	total := 378
	for _, pkType := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		for _, nullable := range []bool{false, true} {
			t.Run(fmt.Sprintf("pk=%s/nullable=%v", pkType, nullable), func(t *testing.T) {
				s := fullSchema(pkType, nullable)
				fields := AllFields(s)
				groups, files, infos := segmentFiles(t, s, batches...)
				for _, g := range groups {
					key := fmt.Sprintf("insert_log/1/2/3/%d/%d", g.ID, 10+g.ID)
					got, rd := readAll(t, key, files[g.ID], fields, ReaderOptions{BatchRows: 50})
					if rd.NumRows() != int64(total) || infos[g.ID].Rows != int64(total) {
						t.Fatalf("group %d: %d rows read, %d written, want %d", g.ID, rd.NumRows(), infos[g.ID].Rows, total)
					}
					var mem int64
					for _, rg := range infos[g.ID].RowGroups {
						mem += rg.MemorySize
					}
					if mem > 4<<10 && len(infos[g.ID].RowGroups) < 2 {
						t.Errorf("group %d: %d row groups, want several with 2 KiB row groups", g.ID, len(infos[g.ID].RowGroups))
					}
					want := groupColumns(t, fields, g, 0, total)
					for i, id := range g.Fields {
						if !array.Equal(got[i], want[i]) {
							t.Errorf("group %d field %d: read back differs", g.ID, id)
						}
						if m := rd.Schema().Field(i).Metadata; m.FindKey(fieldIDKey) < 0 || m.Values()[m.FindKey(fieldIDKey)] != strconv.FormatInt(id, 10) {
							t.Errorf("group %d column %d: metadata %v, want field ID %d", g.ID, i, m, id)
						}
					}
					release(got)
					release(want)
				}
			})
		}
	}
}

func TestProjection(t *testing.T) {
	s := fullSchema(schemapb.DataType_Int64, true)
	fields := AllFields(s)
	groups, files, _ := segmentFiles(t, s, 100)
	if groups[0].ID != 0 || fmt.Sprint(groups[0].Fields) != "[100 0 1]" {
		t.Fatalf("group 0 is %+v", groups[0])
	}
	// Timestamp then pk, out of file order.
	got, rd := readAll(t, "g0", files[0], fields, ReaderOptions{Fields: []int64{1, 100}})
	defer release(got)
	if rd.Schema().NumFields() != 2 || rd.Schema().Field(0).Name != "Timestamp" || rd.Schema().Field(1).Name != "pk" {
		t.Fatalf("schema %v", rd.Schema())
	}
	want := groupColumns(t, fields, Group{Fields: []int64{1, 100}}, 0, 100)
	defer release(want)
	for i := range want {
		if !array.Equal(got[i], want[i]) {
			t.Errorf("column %d differs", i)
		}
	}
	for _, tc := range []struct {
		ids  []int64
		frag string
	}{
		{[]int64{101}, "field 101 is not a column of this file (field IDs [100 0 1])"},
		{[]int64{1, 1}, "field 1 is requested twice"},
		{[]int64{}, "no fields requested"},
	} {
		_, err := NewReader("g0", bytes.NewReader(files[0]), int64(len(files[0])), fields, ReaderOptions{Fields: tc.ids})
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.frag)) {
			t.Errorf("%v: got %v, want %q", tc.ids, err, tc.frag)
		}
	}
}

func TestDeterministic(t *testing.T) {
	s := fullSchema(schemapb.DataType_VarChar, true)
	_, a, _ := segmentFiles(t, s, 300, 900)
	for range 2 {
		_, b, _ := segmentFiles(t, s, 300, 900)
		for id := range a {
			if !bytes.Equal(a[id], b[id]) {
				t.Fatalf("group %d: same rows, different bytes", id)
			}
		}
	}
}

// A row group of unique vectors larger than the 1 MiB dictionary page
// limit mixes dictionary and PLAIN pages in its column chunk, whose
// encoding_stats arrow-go lists in map order; binlog.SortEncodingStats
// fixes the order. (1 MiB row groups rarely get there; larger ones do.)
func TestDeterministicDictionaryFallback(t *testing.T) {
	vec := field(101, "vec", schemapb.DataType_FloatVector, 256, false)
	groups := []Group{{ID: 101, Fields: []int64{101}}}
	opts := WriterOptions{RowGroupBytes: 4 << 20, VectorDictionary: true}
	a, _ := writeGroup(t, groups, groups[0], []*schemapb.FieldSchema{vec}, opts, 3000)
	pf, err := file.NewParquetReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cc.EncodingStats()); n != 3 {
		t.Fatalf("encoding_stats %v: the dictionary did not fall back to PLAIN", cc.EncodingStats())
	}
	for range 12 {
		b, _ := writeGroup(t, groups, groups[0], []*schemapb.FieldSchema{vec}, opts, 3000)
		if !bytes.Equal(a, b) {
			t.Fatal("same rows, different bytes")
		}
	}
}

// Dense vectors are PLAIN by default (no dictionary page, no fallback);
// VectorDictionary dictionary-encodes them as milvus-storage does. Other
// columns keep their dictionary either way.
func TestVectorDictionary(t *testing.T) {
	vec := field(101, "vec", schemapb.DataType_FloatVector, 64, false)
	groups := []Group{{ID: 101, Fields: []int64{101}}}
	for _, on := range []bool{false, true} {
		data, _ := writeGroup(t, groups, groups[0], []*schemapb.FieldSchema{vec}, WriterOptions{VectorDictionary: on}, 500)
		pf, err := file.NewParquetReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		if cc.HasDictionaryPage() != on {
			t.Errorf("VectorDictionary %v: dictionary page %v, encoding_stats %v", on, cc.HasDictionaryPage(), cc.EncodingStats())
		}
	}
}

// An Int64-only group (24 bytes a row) cut at 1 MiB. milvus-storage's
// ParquetFileWriter::Flush closes a row group only once its estimate has
// reached 1 MiB: 43 690 rows leave it 16 bytes short, so one more row
// (at least one a slice) joins it: 43 691 rows, 1 048 584 bytes. The
// spec's example (§4.3, "1048560|43690|0") stops a row short; see
// RATIONALE.md.
func TestRowGroupCutsAtOneMiB(t *testing.T) {
	s := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
	}}
	groups, err := SplitGroups(s, DefaultSplitPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(groups, 0, AllFields(s), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 87880
	vals := make([]int64, n)
	cols := make([]arrow.Array, 3)
	for i := range cols {
		// No validity bitmap: 8 bytes a row exactly, as for a Milvus
		// record without nulls.
		cols[i] = array.NewInt64Data(array.NewData(arrow.PrimitiveTypes.Int64, n,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(vals))}, nil, 0, 0))
	}
	defer release(cols)
	if err := w.Write(cols); err != nil {
		t.Fatal(err)
	}
	b, info, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatRowGroupMetadata(info.RowGroups); got != "1048584|43691|0;1048584|43691|43691;11952|498|87382" {
		t.Fatalf("row_group_metadata %q", got)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if v := pf.MetaData().KeyValueMetadata().FindValue(KeyRowGroupMetadata); v == nil || *v != FormatRowGroupMetadata(info.RowGroups) {
		t.Fatalf("footer row_group_metadata %v", v)
	}
}

func TestWriterRejects(t *testing.T) {
	s := fullSchema(schemapb.DataType_Int64, false)
	fields := AllFields(s)
	groups, err := SplitGroups(s, DefaultSplitPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(groups, 7, fields, WriterOptions{}); err == nil || err.Error() != "packed writer: group 7 is not in the split" {
		t.Errorf("unknown group: %v", err)
	}
	swapped := []Group{groups[1], groups[0]}
	if _, err := NewWriter(swapped, 0, fields, WriterOptions{}); err == nil || err.Error() != "packed writer: groups are not in ascending ID order (0 after 1)" {
		t.Errorf("unsorted groups: %v", err)
	}
	if _, err := NewWriter([]Group{{ID: 0, Fields: []int64{100, 999}}}, 0, fields, WriterOptions{}); err == nil ||
		err.Error() != "packed writer: group 0 lists field 999, which is not in the schema" {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := NewWriter(groups[:2], 0, fields, WriterOptions{}); err == nil ||
		err.Error() != "packed writer: field 111 (f_Text) is in no group" {
		t.Errorf("field left out: %v", err)
	}
	if _, err := NewWriter([]Group{{ID: 0, Fields: []int64{1 << 31}}}, 0, fields, WriterOptions{}); err == nil ||
		err.Error() != "packed writer: field ID 2147483648 does not fit a Parquet field_id (int32)" {
		t.Errorf("wide field ID: %v", err)
	}
	w, err := NewWriter(groups, 0, fields, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nullable := field(100, "pk", schemapb.DataType_Int64, 0, true)
	cols := []arrow.Array{column(t, nullable, 0, 8), column(t, fields[len(fields)-2], 0, 8), column(t, fields[len(fields)-1], 0, 8)}
	defer release(cols)
	if err := w.Write(cols); err == nil || err.Error() != "packed writer: field 100 (pk) is not nullable but its column has 2 nulls" {
		t.Errorf("nulls: %v", err)
	}
	if err := w.Write(cols[:2]); err == nil || err.Error() != "packed writer: 2 columns, the group has 3 fields" {
		t.Errorf("column count: %v", err)
	}
	short := []arrow.Array{cols[1], cols[1], column(t, fields[len(fields)-1], 0, 3)}
	defer short[2].Release()
	if err := w.Write(short); err == nil || err.Error() != "packed writer: field 1 (Timestamp) has 3 rows, field 100 has 8" {
		t.Errorf("lengths: %v", err)
	}
	str := column(t, field(5, "s", schemapb.DataType_VarChar, 0, false), 0, 8)
	defer str.Release()
	if err := w.Write([]arrow.Array{str, cols[1], cols[2]}); err == nil ||
		err.Error() != "packed writer: field 100 (pk): column type utf8, want int64 for Int64" {
		t.Errorf("type: %v", err)
	}
}

// TestPlainPqarrowReader reads every written file with arrow-go's own
// Parquet and pqarrow readers, which know nothing of this package, and
// checks what Milvus' C++ reader relies on (milvus-storage-v2.md §4).
func TestPlainPqarrowReader(t *testing.T) {
	for _, nullable := range []bool{false, true} {
		s := fullSchema(schemapb.DataType_VarChar, nullable)
		fields := AllFields(s)
		byID := map[int64]*schemapb.FieldSchema{}
		for _, f := range fields {
			byID[f.GetFieldID()] = f
		}
		groups, files, infos := segmentFiles(t, s, 1000, 234)
		wantList := FormatGroupFieldIDList(groups)
		for _, g := range groups {
			t.Run(fmt.Sprintf("nullable=%v/group=%d", nullable, g.ID), func(t *testing.T) {
				b := files[g.ID]
				if string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1" {
					t.Fatalf("not a plain Parquet file: starts %q", b[:4])
				}
				pf, err := file.NewParquetReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				defer pf.Close()
				md := pf.MetaData()

				kv := md.KeyValueMetadata()
				if keys := fmt.Sprint(kv.Keys()); keys != "[group_field_id_list row_group_metadata storage_version]" {
					t.Fatalf("footer keys %s", keys)
				}
				if v := *kv.FindValue(KeyGroupFieldIDList); v != wantList {
					t.Errorf("group_field_id_list %q, want the whole split %q", v, wantList)
				}
				if v := *kv.FindValue(KeyStorageVersion); v != "1.0.0" {
					t.Errorf("storage_version %q", v)
				}
				rgs, err := ParseRowGroupMetadata(*kv.FindValue(KeyRowGroupMetadata))
				if err != nil {
					t.Fatal(err)
				}
				if len(rgs) != md.NumRowGroups() || len(rgs) < 2 {
					t.Fatalf("%d row_group_metadata entries, %d row groups", len(rgs), md.NumRowGroups())
				}
				var off int64
				for i, rg := range rgs {
					if rg.Rows != md.RowGroup(i).NumRows() || rg.Offset != off || rg.Rows == 0 || rg.MemorySize <= 0 {
						t.Errorf("entry %d %+v; Parquet row group has %d rows at %d", i, rg, md.RowGroup(i).NumRows(), off)
					}
					if i < len(rgs)-1 && rg.MemorySize < 2<<10 {
						t.Errorf("entry %d: %d bytes, a row group is cut at 2 KiB or more", i, rg.MemorySize)
					}
					off += rg.Rows
					for c := range md.RowGroup(i).NumColumns() {
						cc, err := md.RowGroup(i).ColumnChunk(c)
						if err != nil {
							t.Fatal(err)
						}
						if cc.Compression() != compress.Codecs.Zstd {
							t.Errorf("row group %d column %d: %s, want ZSTD", i, c, cc.Compression())
						}
						st, _ := cc.StatsSet()
						pt := md.Schema.Column(c).PhysicalType()
						isBin := pt == parquet.Types.FixedLenByteArray ||
							(pt == parquet.Types.ByteArray && md.Schema.Column(c).LogicalType().String() == "None")
						if st == isBin {
							t.Errorf("row group %d column %d (%s): statistics %v", i, c, md.Schema.Column(c).Name(), st)
						}
					}
				}
				if off != 1234 || md.NumRows != 1234 || infos[g.ID].Rows != 1234 {
					t.Errorf("%d rows in row_group_metadata, %d in the footer", off, md.NumRows)
				}

				root := md.Schema.Root()
				if root.NumFields() != len(g.Fields) {
					t.Fatalf("%d columns, group has %d", root.NumFields(), len(g.Fields))
				}
				for i, id := range g.Fields {
					n := root.Field(i)
					f := byID[id]
					if int64(n.FieldID()) != id || n.Name() != f.GetName() {
						t.Errorf("column %d: field_id %d name %q, want %d %q", i, n.FieldID(), n.Name(), id, f.GetName())
					}
					want := parquet.Repetitions.Required
					if f.GetNullable() {
						want = parquet.Repetitions.Optional
					}
					if n.RepetitionType() != want {
						t.Errorf("field %d: %s, want %s", id, n.RepetitionType(), want)
					}
				}

				fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
				if err != nil {
					t.Fatal(err)
				}
				if md.KeyValueMetadata().FindValue("ARROW:schema") != nil {
					t.Error("ARROW:schema is stored")
				}
				tbl, err := fr.ReadTable(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer tbl.Release()
				want := groupColumns(t, fields, g, 0, 1234)
				defer release(want)
				for i, id := range g.Fields {
					af := tbl.Schema().Field(i)
					wf, _ := ArrowField(byID[id])
					if v, ok := af.Metadata.GetValue(fieldIDKey); !ok || v != strconv.FormatInt(id, 10) {
						t.Errorf("column %d: %s = %q", i, fieldIDKey, v)
					}
					if !arrow.TypeEqual(af.Type, wf.Type) || af.Nullable != wf.Nullable {
						t.Errorf("column %d: %s nullable=%v, want %s nullable=%v", i, af.Type, af.Nullable, wf.Type, wf.Nullable)
					}
					got, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
					if err != nil {
						t.Fatal(err)
					}
					if !array.Equal(got, want[i]) {
						t.Errorf("field %d: pqarrow reads other values", id)
					}
					got.Release()
				}
			})
		}
	}
}
