package segwrite_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/coltest"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/packed"
)

// v2Writer starts a storage-v2 writer of in's schema over store, with
// small chunks and row groups; mutate may adjust the config first.
func v2Writer(t testing.TB, store objstore.Store, in *input, mutate func(*segwrite.Config)) (*segwrite.Writer, segwrite.Config) {
	t.Helper()
	return newWriter(t, store, in, 24<<10, func(c *segwrite.Config) {
		c.Root, c.StorageVersion, c.RowGroupBytes = "v2", 2, 3<<10
		if mutate != nil {
			mutate(c)
		}
	})
}

// wantSplit is Milvus's default split of s (milvus-storage-v2.md §3)
// written out: RowID, Timestamp, pk and partition key in group 0, each
// vector and Text field in a group of its own ID, the rest in group 1;
// fields in schema order; groups by ID.
func wantSplit(s *schemapb.CollectionSchema) []packed.Group {
	members := map[int64][]int64{}
	for _, f := range s.Fields {
		g := int64(1)
		switch f.DataType {
		case schemapb.DataType_BinaryVector, schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector,
			schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector, schemapb.DataType_SparseFloatVector,
			schemapb.DataType_Text:
			g = f.FieldID
		}
		if f.FieldID < 100 || f.IsPrimaryKey || f.IsPartitionKey {
			g = 0
		}
		members[g] = append(members[g], f.FieldID)
	}
	var groups []packed.Group
	for id, fs := range members {
		groups = append(groups, packed.Group{ID: id, Fields: fs})
	}
	slices.SortFunc(groups, func(a, b packed.Group) int { return int(a.ID - b.ID) })
	return groups
}

// fieldIDList renders groups as group_field_id_list, independently of
// packed.FormatGroupFieldIDList.
func fieldIDList(groups []packed.Group) string {
	var gs []string
	for _, g := range groups {
		var ids []string
		for _, id := range g.Fields {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		gs = append(gs, strings.Join(ids, ","))
	}
	return strings.Join(gs, ";")
}

// TestV2EveryType writes two outputs of several chunks for every DataType,
// nullable or not, with either pk type, and reads every file back with
// arrow-go's plain Parquet reader.
func TestV2EveryType(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			for _, nullable := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/nullable=%v", pk, nullable), func(t *testing.T) {
					s := coltest.EveryTypeSchema(pk, nullable)
					in := v2Input(t, s, 400, 37, 700, 363)
					root := fmt.Sprintf("v2-%s-%v", pk, nullable)
					w, cfg := v2Writer(t, store, in, func(c *segwrite.Config) { c.Root = root })
					const split = 800
					in.feed(t, w, 97, func(row int) int { return row / split })
					segs, err := w.Close(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if len(segs) != 2 || segs[0].NumOfRows != split || segs[1].NumOfRows != 700 {
						t.Fatalf("outputs: %v", segs)
					}
					groups := wantSplit(s)
					if len(groups) != 9 { // 0, 1, Text and six vector types
						t.Fatalf("split %v: the schema lacks a DataType", groups)
					}
					checkV2Outputs(t, store, in, cfg, segs, groups)
				})
			}
		}
	})
}

// checkV2Outputs checks every output's FieldBinlogs, the exact key and log
// ID sequence (per output: chunk after chunk, groups by ascending ID, then
// the stats log), and every file as a plain Parquet reader sees it. The
// outputs hold the input's rows in order.
func checkV2Outputs(t *testing.T, store objstore.Store, in *input, cfg segwrite.Config, segs []*datapb.CompactionSegment, groups []packed.Group) {
	t.Helper()
	byID := map[int64]*schemapb.FieldSchema{}
	for _, f := range cfg.Schema.Fields {
		byID[f.FieldID] = f
	}
	list := fieldIDList(groups)
	nextLog := logBase
	var wantKeys []string
	row, maxRowGroups := 0, 0
	for si, seg := range segs {
		if seg.SegmentID != segBase+int64(si) || seg.StorageVersion != 2 || seg.Channel != cfg.Channel {
			t.Fatalf("output %d: %+v", si, seg)
		}
		if len(seg.InsertLogs) != len(groups) {
			t.Fatalf("output %d: %d FieldBinlogs, want one per group (%d)", si, len(seg.InsertLogs), len(groups))
		}
		for gi, fb := range seg.InsertLogs {
			if fb.FieldID != groups[gi].ID || !slices.Equal(fb.ChildFields, groups[gi].Fields) {
				t.Fatalf("output %d FieldBinlog %d: group %d child_fields %v, want group %d %v",
					si, gi, fb.FieldID, fb.ChildFields, groups[gi].ID, groups[gi].Fields)
			}
		}
		chunks := len(seg.InsertLogs[0].Binlogs)
		if chunks < 2 {
			t.Fatalf("output %d: %d chunks; the test wants several", si, chunks)
		}
		var entries int64
		for c := range chunks {
			n := seg.InsertLogs[0].Binlogs[c].EntriesNum
			ts := array.NewSlice(in.all[1], int64(row), int64(row)+n).(*array.Int64).Int64Values()
			for gi, fb := range seg.InsertLogs {
				if len(fb.Binlogs) != chunks {
					t.Fatalf("output %d: group %d has %d files, group %d has %d", si, fb.FieldID, len(fb.Binlogs), groups[0].ID, chunks)
				}
				b := fb.Binlogs[c]
				key := fmt.Sprintf("%s/insert_log/%d/%d/%d/%d/%d", cfg.Root, cfg.CollectionID, cfg.PartitionID, seg.SegmentID, fb.FieldID, nextLog)
				if b.LogPath != key || b.LogID != nextLog {
					t.Fatalf("output %d chunk %d group %d: key %s log ID %d, want %s", si, c, fb.FieldID, b.LogPath, b.LogID, key)
				}
				wantKeys = append(wantKeys, key)
				nextLog++
				if b.EntriesNum != n || b.TimestampFrom != uint64(slices.Min(ts)) || b.TimestampTo != uint64(slices.Max(ts)) {
					t.Fatalf("%s: entries %d ts %d..%d, want %d rows ts %d..%d",
						key, b.EntriesNum, b.TimestampFrom, b.TimestampTo, n, slices.Min(ts), slices.Max(ts))
				}
				data := objstoretest.ReadAll(t, store, key)
				if b.LogSize != int64(len(data)) {
					t.Fatalf("%s: log_size %d, object %d bytes", key, b.LogSize, len(data))
				}
				pf := readParquet(t, key, data)
				var mem int64
				for i, id := range groups[gi].Fields {
					f := byID[id]
					if pf.fieldIDs[i] != int32(id) || pf.names[i] != f.Name || pf.required[i] == f.Nullable {
						t.Fatalf("%s column %d: %s field_id %d required %v, want %s %d required %v",
							key, i, pf.names[i], pf.fieldIDs[i], pf.required[i], f.Name, id, !f.Nullable)
					}
					want := array.NewSlice(in.all[id], int64(row), int64(row)+n)
					if !array.Equal(pf.cols[i], want) {
						t.Fatalf("%s field %d: values differ from input rows %d..%d", key, id, row, int64(row)+n)
					}
					mem += binlog.MemorySize(want)
					want.Release()
				}
				if len(pf.fieldIDs) != len(groups[gi].Fields) {
					t.Fatalf("%s: columns %v, want %v", key, pf.fieldIDs, groups[gi].Fields)
				}
				if b.MemorySize != mem {
					t.Fatalf("%s: memory_size %d, the rows' Arrow bytes are %d", key, b.MemorySize, mem)
				}
				checkFooter(t, key, pf, list, n)
				maxRowGroups = max(maxRowGroups, len(pf.rowGroups))
			}
			entries += n
			row += int(n)
		}
		if entries != seg.NumOfRows {
			t.Fatalf("output %d: files hold %d rows, NumOfRows %d", si, entries, seg.NumOfRows)
		}
		st := seg.Field2StatslogPaths
		key := fmt.Sprintf("%s/stats_log/%d/%d/%d/100/%d", cfg.Root, cfg.CollectionID, cfg.PartitionID, seg.SegmentID, nextLog)
		if len(st) != 1 || st[0].FieldID != 100 || len(st[0].Binlogs) != 1 || st[0].Binlogs[0].LogPath != key ||
			st[0].Binlogs[0].LogID != nextLog || st[0].Binlogs[0].EntriesNum != seg.NumOfRows {
			t.Fatalf("output %d: stats logs %v, want one at %s", si, st, key)
		}
		wantKeys = append(wantKeys, key)
		nextLog++
		checkStats(t, store, in, key, row-int(seg.NumOfRows), int(seg.NumOfRows))
	}
	if maxRowGroups < 3 {
		t.Fatalf("no file has more than %d row groups; the test wants several", maxRowGroups)
	}
	if row != in.rows() {
		t.Fatalf("outputs hold %d rows, input %d", row, in.rows())
	}
	if cfg.LogIDs.Next != nextLog {
		t.Fatalf("log range at %d, the outputs use IDs up to %d", cfg.LogIDs.Next, nextLog-1)
	}
	slices.Sort(wantKeys)
	if got := listKeys(t, store, cfg.Root+"/"); !slices.Equal(got, wantKeys) {
		t.Fatalf("store holds %v, want %v", got, wantKeys)
	}
}

// checkFooter checks the three footer entries, in order and nothing else
// (no ARROW:schema), and that row_group_metadata describes exactly the
// Parquet row groups; every column chunk is ZSTD.
func checkFooter(t *testing.T, key string, pf parquetFile, list string, rows int64) {
	t.Helper()
	if len(pf.kv) != 3 || pf.kv[0] != [2]string{"group_field_id_list", list} ||
		pf.kv[1][0] != "row_group_metadata" || pf.kv[2] != [2]string{"storage_version", "1.0.0"} {
		t.Fatalf("%s: footer %q, want group_field_id_list %q, row_group_metadata, storage_version 1.0.0", key, pf.kv, list)
	}
	entries := strings.Split(pf.kv[1][1], ";")
	if len(entries) != len(pf.rowGroups) {
		t.Fatalf("%s: row_group_metadata %q for %d Parquet row groups", key, pf.kv[1][1], len(pf.rowGroups))
	}
	var offset int64
	for i, e := range entries {
		var mem, n, off int64
		if _, err := fmt.Sscanf(e, "%d|%d|%d", &mem, &n, &off); err != nil || mem <= 0 ||
			n != pf.rowGroups[i] || off != offset || fmt.Sprintf("%d|%d|%d", mem, n, off) != e {
			t.Fatalf("%s: row_group_metadata entry %d %q, Parquet row group holds %d rows at offset %d", key, i, e, pf.rowGroups[i], offset)
		}
		offset += n
	}
	if offset != rows {
		t.Fatalf("%s: row groups hold %d rows, entries_num %d", key, offset, rows)
	}
	if !pf.codecsOK {
		t.Fatalf("%s: a column chunk is not ZSTD", key)
	}
}

// The average-size policy splits each output by the first rows appended to
// it: output 0 starts with 1.5 KiB docs (doc gets group 102), output 1
// with short ones (doc stays in group 1). The threshold left at 0 is
// Milvus's 1024 bytes, or tag (4 bytes a row) would be split off too.
func TestV2AvgSizeSplitPerOutput(t *testing.T) {
	store := objstoretest.Local(t)
	s := &schemapb.CollectionSchema{Name: "docs", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "tag", DataType: schemapb.DataType_Int32},
		{FieldID: 102, Name: "doc", DataType: schemapb.DataType_VarChar},
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
	}}
	in := v2Input(t, s, 300)
	// Rows 0..149 get long docs, the rest short ones.
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for r := range 300 {
		if r < 150 {
			b.Append(strings.Repeat(string(rune('a'+r%26)), 1500))
		} else {
			b.Append("short")
		}
	}
	doc := b.NewArray()
	in.batches[0].Columns[102].Release()
	in.batches[0].Columns[102] = doc
	doc.Retain()
	in.all[102].Release()
	in.all[102] = doc

	policy := packed.DefaultSplitPolicy()
	policy.SplitByAvgSize, policy.AvgSizeThreshold = true, 0 // 0: Milvus's 1024
	w, _ := v2Writer(t, store, in, func(c *segwrite.Config) { c.SplitPolicy = &policy; c.ChunkBytes = 64 << 10 })
	in.feed(t, w, 50, func(row int) int { return row / 200 })
	segs, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 {
		t.Fatalf("outputs: %v", segs)
	}
	big := []packed.Group{{ID: 0, Fields: []int64{100, 0, 1}}, {ID: 1, Fields: []int64{101}}, {ID: 102, Fields: []int64{102}}}
	small := []packed.Group{{ID: 0, Fields: []int64{100, 0, 1}}, {ID: 1, Fields: []int64{101, 102}}}
	for si, want := range [][]packed.Group{big, small} {
		var got []packed.Group
		for _, fb := range segs[si].InsertLogs {
			got = append(got, packed.Group{ID: fb.FieldID, Fields: fb.ChildFields})
			for _, bl := range fb.Binlogs {
				pf := readParquet(t, bl.LogPath, objstoretest.ReadAll(t, store, bl.LogPath))
				if pf.kv[0] != [2]string{"group_field_id_list", fieldIDList(want)} {
					t.Fatalf("output %d %s: %q, want %q", si, bl.LogPath, pf.kv[0][1], fieldIDList(want))
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("output %d groups %v, want %v", si, got, want)
		}
	}
}

// The same rows give the same bytes, every object.
func TestV2DeterministicBytes(t *testing.T) {
	store := objstoretest.Local(t)
	in := v2Input(t, coltest.EveryTypeSchema(schemapb.DataType_VarChar, true), 500, 500)
	sameBytes(t, store, func(root string) {
		w, _ := v2Writer(t, store, in, func(c *segwrite.Config) { c.Root = root; c.UploadParallelism = 3 })
		in.feed(t, w, 120, func(row int) int { return row / 600 })
		if _, err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestV2Config(t *testing.T) {
	store := objstoretest.Local(t)
	s := coltest.EveryTypeSchema(schemapb.DataType_Int64, false)
	for _, v := range []int64{3, -1} {
		_, err := segwrite.New(segwrite.Config{Store: store, Schema: s, StorageVersion: v,
			SegmentIDs: &segwrite.IDRange{}, LogIDs: &segwrite.IDRange{}})
		want := fmt.Sprintf("segwrite: storage_version %d is not supported (0/1 = v1, 2 = v2)", v)
		if err == nil || err.Error() != want {
			t.Fatalf("StorageVersion %d: %v, want %q", v, err, want)
		}
	}
	for _, v := range []int64{0, 1, 2} {
		w, err := segwrite.New(segwrite.Config{Store: store, Schema: s, StorageVersion: v,
			SegmentIDs: &segwrite.IDRange{Next: 7, End: 8}, LogIDs: &segwrite.IDRange{}})
		if err != nil {
			t.Fatalf("StorageVersion %d: %v", v, err)
		}
		segs, err := w.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]int64{0: 0, 1: 0, 2: 2}[v]
		if len(segs) != 1 || segs[0].SegmentID != 7 || segs[0].StorageVersion != want || segs[0].NumOfRows != 0 {
			t.Fatalf("StorageVersion %d: placeholder %v, want storage_version %d", v, segs, want)
		}
	}
	// A split that cannot be made fails at New, before anything is written.
	bad := coltest.EveryTypeSchema(schemapb.DataType_Int64, false)
	bad.StructArrayFields = []*schemapb.StructArrayFieldSchema{{FieldID: 300, Name: "st"}}
	_, err := segwrite.New(segwrite.Config{Store: store, Schema: bad, StorageVersion: 2,
		SegmentIDs: &segwrite.IDRange{}, LogIDs: &segwrite.IDRange{}})
	if err == nil || !strings.Contains(err.Error(), "struct array fields") {
		t.Fatalf("struct array schema: %v", err)
	}
}
