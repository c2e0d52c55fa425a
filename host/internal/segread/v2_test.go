package segread_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host/internal/coltest"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/packed"
)

// TestV2EveryType writes the same rows of every DataType as v1 binlogs, as
// v2 files of the default split and as 2.6 pre-release v2 files (legacy
// split, no child_fields, uncompressed, no statistics, row_group_size) and
// reads each back exactly.
func TestV2EveryType(t *testing.T) {
	store := objstoretest.Local(t)
	specs := []segSpec{
		{id: 1, version: 0},
		{id: 2, version: 2, split: packed.DefaultSplitPolicy()},
		{id: 3, version: 2, legacy: true},
	}
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		for _, nullable := range []bool{false, true} {
			schema := coltest.EveryTypeSchema(pk, nullable)
			if n := len(schema.Fields); n != 22 { // pk, 19 DataTypes, RowID, Timestamp
				t.Fatalf("%d fields: %v", n, schema.Fields)
			}
			root := fmt.Sprintf("files-%v-%v", pk, nullable)
			for _, spec := range specs {
				name := fmt.Sprintf("%v/nullable=%v/v%d", pk, nullable, spec.version)
				if spec.legacy {
					name += "-legacy"
				}
				t.Run(name, func(t *testing.T) {
					spec.chunks = []int{300, 200, 77}
					seg, want := writeSegment(t, store, root, schema, spec)
					defer releaseAll(want)
					// Downloaded whole, and read in place with ranged reads.
					for _, limit := range []int64{0, -1} {
						got := readAll(t, store, schema, seg, segread.Options{BatchRows: 128, Parallelism: 3, DownloadLimit: limit})
						for _, f := range schema.Fields {
							if !array.Equal(got[f.FieldID], want[f.FieldID]) {
								t.Errorf("download limit %d: field %d (%s) differs from what was written", limit, f.FieldID, f.DataType)
							}
						}
						releaseAll(got)
					}
				})
			}
		}
	}
}

// TestV2MatchesV1Gen: gen writes the same rows in v1 and v2 (same seed); a
// mixed collection's segments read as their v1 twins, whatever their
// version.
func TestV2MatchesV1Gen(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			cfg := smallConfig(pk)
			cfg.Segments = 3
			cfg.RootPath = "v1-" + pk.String()
			v1 := generate(t, store, cfg)
			cfg.StorageVersion, cfg.RootPath = 2, "v2-"+pk.String()
			v2 := generate(t, store, cfg)
			cfg.MixedVersions, cfg.RootPath = true, "mixed-"+pk.String()
			mixed := generate(t, store, cfg)
			for i := range cfg.Segments {
				want := readAll(t, store, v1.Schema, v1.Segments[i], segread.Options{BatchRows: 700})
				for _, col := range []*gen.Collection{v2, mixed} {
					seg := col.Segments[i]
					if seg.StorageVersion != cfg.SegmentVersion(i) && col == mixed {
						t.Fatalf("mixed segment %d has storage_version %d", i, seg.StorageVersion)
					}
					for _, limit := range []int64{0, -1} {
						got := readAll(t, store, col.Schema, seg, segread.Options{BatchRows: 333, Parallelism: 2, DownloadLimit: limit})
						for _, f := range col.Schema.Fields {
							if !array.Equal(got[f.FieldID], want[f.FieldID]) {
								t.Errorf("%v segment %d (storage_version %d, download limit %d) field %d differs from the v1 read",
									pk, i, seg.StorageVersion, limit, f.FieldID)
							}
						}
						releaseAll(got)
					}
				}
				releaseAll(want)
			}
		}
	})
}

// TestProjectionIO: a pk+ts projection downloads only the objects holding
// them: group 0 of a v2 segment (default or legacy split), the two fields'
// binlogs of a v1 one; batches hold exactly the requested columns and
// RowSizes count only them.
func TestProjectionIO(t *testing.T) {
	base := objstoretest.Local(t)
	cfg := smallConfig(schemapb.DataType_Int64)
	v1 := generate(t, base, cfg)
	cfg.StorageVersion, cfg.RootPath = 2, "v2"
	v2 := generate(t, base, cfg)
	legacy, _ := writeSegment(t, base, "legacy", smallSchema(), segSpec{id: 9, version: 2, legacy: true, chunks: []int{50, 50, 20}})
	cases := []struct {
		name   string
		schema *schemapb.CollectionSchema
		seg    *datapb.CompactionSegmentBinlogs
		fields []int64
		dirs   []string // the key directories (field or group) fetched
		gets   int
	}{
		{"v2 pk+ts", v2.Schema, v2.Segments[0], []int64{gen.PKField, gen.TimestampField}, []string{"0"}, 3},
		{"v2 title", v2.Schema, v2.Segments[0], []int64{gen.TitleField}, []string{"1"}, 3},
		{"v2 vector+ts", v2.Schema, v2.Segments[0], []int64{gen.VectorField, gen.TimestampField}, []string{"0", "101"}, 6},
		{"v1 pk+ts", v1.Schema, v1.Segments[0], []int64{gen.PKField, gen.TimestampField}, []string{"100", "1"}, 6},
		{"legacy pk+ts", smallSchema(), legacy, []int64{100, 1}, []string{"0"}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &recordingStore{Store: base}
			opts := segread.Options{BatchRows: 256, Fields: tc.fields}
			got := readAll(t, store, tc.schema, tc.seg, opts)
			defer releaseAll(got)
			if len(store.keys) != tc.gets {
				t.Errorf("%d objects fetched, want %d: %v", len(store.keys), tc.gets, store.keys)
			}
			for _, k := range store.keys {
				if !slices.Contains(tc.dirs, path.Base(path.Dir(k))) {
					t.Errorf("fetched %q, outside directories %v", k, tc.dirs)
				}
			}
			full := readAll(t, base, tc.schema, tc.seg, segread.Options{})
			defer releaseAll(full)
			for _, id := range tc.fields {
				if !array.Equal(got[id], full[id]) {
					t.Errorf("field %d differs from a full read", id)
				}
			}
			// RowSizes over the projection only.
			r, err := segread.Open(context.Background(), base, tc.schema, tc.seg, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, err := r.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Release()
			sub := &schemapb.CollectionSchema{}
			for _, id := range tc.fields {
				sub.Fields = append(sub.Fields, field(tc.schema, id))
			}
			if want := segread.RowSizes(sub, b.Columns, b.Rows); !slices.Equal(b.RowSizes, want) {
				t.Errorf("row sizes %v, want %v", b.RowSizes[:4], want[:4])
			}
		})
	}
}

// smallSchema is a pk, a vector and a nullable VarChar, then the system
// fields: default split 0 [100 0 1], 1 [102], 101 [101]; legacy split
// 0 [100 102 0 1], 101 [101].
func smallSchema() *schemapb.CollectionSchema {
	return coltest.WithSystemFields(&schemapb.CollectionSchema{Name: "small", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
		{FieldID: 102, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true},
	}})
}

// TestV2MissingFields: fields added to the schema after a v2 segment was
// written are filled as for v1: nulls, the default value, or an error
// naming the field.
func TestV2MissingFields(t *testing.T) {
	store := objstoretest.Local(t)
	cfg := smallConfig(schemapb.DataType_VarChar)
	cfg.StorageVersion = 2
	col := generate(t, store, cfg)
	schema := cloneSchema(col.Schema)
	schema.Fields = append(schema.Fields,
		&schemapb.FieldSchema{FieldID: 200, Name: "note", DataType: schemapb.DataType_VarChar, Nullable: true},
		&schemapb.FieldSchema{FieldID: 201, Name: "score", DataType: schemapb.DataType_Int64,
			DefaultValue: &schemapb.ValueField{Data: &schemapb.ValueField_LongData{LongData: 7}}})
	got := readAll(t, store, schema, col.Segments[0], segread.Options{BatchRows: 600})
	defer releaseAll(got)
	if n := got[200]; n.Len() != 2500 || n.NullN() != 2500 {
		t.Fatalf("note: %d nulls in %d rows", n.NullN(), n.Len())
	}
	for i, v := range got[201].(*array.Int64).Int64Values() {
		if v != 7 {
			t.Fatalf("score row %d = %d, want the default 7", i, v)
		}
	}
	// Projection: only the added field; nothing is downloaded.
	rec := &recordingStore{Store: store}
	only := readAll(t, rec, schema, col.Segments[0], segread.Options{Fields: []int64{201}})
	releaseAll(only)
	if len(rec.keys) != 0 {
		t.Fatalf("a fill-only projection fetched %v", rec.keys)
	}
	schema.Fields = append(schema.Fields, &schemapb.FieldSchema{FieldID: 202, Name: "rank", DataType: schemapb.DataType_Int32})
	_, err := segread.Open(context.Background(), store, schema, col.Segments[0], segread.Options{})
	wantAll(t, err, "segment 450000000000000100", "field 202 (rank) is in no column group", "neither nullable nor has a default")
}

// TestV2MissingFieldsLegacy: without child_fields only the short group's
// files tell whether an added field is absent, so the fill is decided when
// the first chunk is opened: nulls for a nullable field, else an error
// naming the field.
func TestV2MissingFieldsLegacy(t *testing.T) {
	store := objstoretest.Local(t)
	schema := smallSchema()
	seg, want := writeSegment(t, store, "files", schema, segSpec{id: 21, version: 2, legacy: true, chunks: []int{30, 20}})
	defer releaseAll(want)
	schema.Fields = append(schema.Fields, &schemapb.FieldSchema{FieldID: 200, Name: "note", DataType: schemapb.DataType_VarChar, Nullable: true})
	got := readAll(t, store, schema, seg, segread.Options{BatchRows: 8})
	defer releaseAll(got)
	if n := got[200]; n.Len() != 50 || n.NullN() != 50 || !array.Equal(got[102], want[102]) {
		t.Fatalf("note: %d nulls in %d rows; title equal: %v", n.NullN(), n.Len(), array.Equal(got[102], want[102]))
	}
	schema.Fields = append(schema.Fields, &schemapb.FieldSchema{FieldID: 202, Name: "rank", DataType: schemapb.DataType_Int32})
	r, err := segread.Open(context.Background(), store, schema, seg, segread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Next(context.Background())
	wantAll(t, err, "segment 21 field 202 (rank): no object of the segment holds it", "neither nullable nor has a default")
}

// TestV2OpenErrors: metadata that cannot describe a v2 segment fails Open
// with the segment, the group and the key.
func TestV2OpenErrors(t *testing.T) {
	store := objstoretest.Local(t)
	cfg := smallConfig(schemapb.DataType_Int64)
	cfg.StorageVersion = 2
	col := generate(t, store, cfg)
	base := col.Segments[0]
	g := func(seg *datapb.CompactionSegmentBinlogs, id int64) *datapb.FieldBinlog { return fieldBinlog(seg, id) }
	cases := []struct {
		name   string
		damage func(seg *datapb.CompactionSegmentBinlogs)
		opts   segread.Options
		want   []string
	}{
		{"storage version 3", func(seg *datapb.CompactionSegmentBinlogs) { seg.StorageVersion = 3 }, segread.Options{},
			[]string{"segment 450000000000000100: storage_version 3 is not supported (this host reads 0/1 = v1 and 2 = v2)"}},
		{"unequal file counts", func(seg *datapb.CompactionSegmentBinlogs) { g(seg, 101).Binlogs = g(seg, 101).Binlogs[:2] }, segread.Options{},
			[]string{"column group 101 has 2 files but group 0 has 3; storage v2 needs the same number in every group"}},
		{"entries_num disagree", func(seg *datapb.CompactionSegmentBinlogs) { g(seg, 1).Binlogs[1].EntriesNum = 999 }, segread.Options{},
			[]string{"chunk 1", g(base, 1).Binlogs[1].LogPath, "entries_num 999"}},
		{"group directory", func(seg *datapb.CompactionSegmentBinlogs) {
			g(seg, 1).Binlogs[0].LogPath = g(base, 0).Binlogs[0].LogPath
		},
			segread.Options{}, []string{"column group 1", g(base, 0).Binlogs[0].LogPath, `sits in directory "0"; a storage-v2 file's directory must be its group ID`}},
		{"field in two groups", func(seg *datapb.CompactionSegmentBinlogs) { g(seg, 1).ChildFields = append(g(seg, 1).ChildFields, 100) },
			segread.Options{}, []string{"field 100 is in column groups 0 and 1"}},
		{"child field not in schema", func(seg *datapb.CompactionSegmentBinlogs) { g(seg, 1).ChildFields = append(g(seg, 1).ChildFields, 999) },
			segread.Options{}, []string{"column group 1 lists field 999, which is not in the schema"}},
		{"group listed twice", func(seg *datapb.CompactionSegmentBinlogs) {
			seg.FieldBinlogs = append(seg.FieldBinlogs, cloneSeg(seg).FieldBinlogs[1])
		}, segread.Options{}, []string{"column group 1 has two FieldBinlogs"}},
		{"no log path", func(seg *datapb.CompactionSegmentBinlogs) { g(seg, 0).Binlogs[0].LogPath = "" }, segread.Options{},
			[]string{"column group 0: binlog", "has no log_path"}},
		{"field requested twice", func(*datapb.CompactionSegmentBinlogs) {}, segread.Options{Fields: []int64{100, 1, 100}},
			[]string{"field 100 is requested twice"}},
		{"field not in schema requested", func(*datapb.CompactionSegmentBinlogs) {}, segread.Options{Fields: []int64{555}},
			[]string{"requested field 555 is not in the schema"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seg := cloneSeg(base)
			tc.damage(seg)
			r, err := segread.Open(context.Background(), store, col.Schema, seg, tc.opts)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			wantAll(t, err, append(tc.want, "segment 450000000000000100")...)
		})
	}
}

// TestV2NextErrors: objects that contradict a segment's metadata or version
// fail Next with an error marked corrupt.Err naming the segment and the key.
func TestV2NextErrors(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		schema := smallSchema()
		chunks := []int{40, 30}
		a, _ := writeSegment(t, store, "files", schema, segSpec{id: 11, version: 2, split: packed.DefaultSplitPolicy(), chunks: chunks})
		b, _ := writeSegment(t, store, "files", schema, segSpec{id: 12, version: 2, chunks: chunks}) // legacy split, current format
		v1, _ := writeSegment(t, store, "files", schema, segSpec{id: 13, version: 0, chunks: chunks})
		key := func(seg *datapb.CompactionSegmentBinlogs, id int64, chunk int) string {
			return fieldBinlog(seg, id).Binlogs[chunk].LogPath
		}
		// swapIn puts a copy of object src (cut: its Parquet footer cut
		// short) in the directory of seg's binlog (id, chunk), points that
		// binlog at it and returns its key.
		copies := 0
		swapIn := func(seg *datapb.CompactionSegmentBinlogs, id int64, chunk int, src string, cut bool) string {
			data := objstoretest.ReadAll(t, store, src)
			if cut {
				data = cutFooter(data)
			}
			copies++
			b := fieldBinlog(seg, id).Binlogs[chunk]
			b.LogPath = fmt.Sprintf("%s/%d", path.Dir(b.LogPath), 900+copies)
			if err := store.Put(ctx, b.LogPath, strings.NewReader(string(data)), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			return b.LogPath
		}
		cases := []struct {
			name   string
			seg    *datapb.CompactionSegmentBinlogs
			schema *schemapb.CollectionSchema
			damage func(seg *datapb.CompactionSegmentBinlogs) string // returns the key the error must name
			want   []string
		}{
			{"v1 binlog in a v2 segment", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				return swapIn(seg, 101, 0, key(v1, 101, 0), false)
			}, []string{"column group 101", "is a storage-v1 binlog (magic BC FA FF 00), not a Parquet file; the segment has storage_version 2"}},
			{"Parquet file in a v1 segment", v1, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				return swapIn(seg, 102, 1, key(a, 1, 1), false)
			}, []string{"field 102 (title)", "is a Parquet file (storage v2?), not a v1 binlog; the segment has storage_version 0"}},
			// The Parquet reader fails with an error that wraps io.EOF, which
			// must not read as the end of the segment.
			{"v2 file cut short", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				return swapIn(seg, 1, 1, key(a, 1, 1), true)
			}, []string{"column group 1", "not a valid Parquet file", "(unexpected EOF)"}},
			{"rows differ from entries_num", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				fieldBinlog(seg, 101).Binlogs[0].LogPath = key(a, 101, 1)
				return key(a, 101, 1)
			}, []string{"column group 101", "chunk 0", "holds 30 rows but the chunk's entries_num is 40"}},
			{"child_fields contradict the file", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				fieldBinlog(seg, 0).ChildFields = []int64{100, 0}
				fieldBinlog(seg, 1).ChildFields = []int64{102, 1}
				return key(a, 0, 0)
			}, []string{"holds fields [100 0 1] but its column group 0 has child_fields [100 0]"}},
			{"field_id not in the schema", a, &schemapb.CollectionSchema{Fields: slices.DeleteFunc(slices.Clone(schema.Fields),
				func(f *schemapb.FieldSchema) bool { return f.FieldID == 102 })}, func(seg *datapb.CompactionSegmentBinlogs) string {
				// Legacy metadata: only the files say what groups 0 and 1 hold.
				fieldBinlog(seg, 0).ChildFields, fieldBinlog(seg, 1).ChildFields = nil, nil
				return swapIn(seg, 0, 0, key(b, 0, 0), false)
			}, []string{"column group 0", "has field_id 102, which is not in the schema"}},
			{"group list of another split", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				return swapIn(seg, 101, 0, key(b, 101, 0), false)
			}, []string{"group_field_id_list [[100 102 0 1] [101]] does not list the segment's 3 column groups in ID order with this file's group (101) at position 2"}},
			{"legacy group holds a claimed field", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				fieldBinlog(seg, 1).ChildFields = nil
				return swapIn(seg, 1, 0, key(b, 0, 0), false)
			}, []string{"column group 1", "holds field 100, which column group 0 claims"}},
			{"legacy vector group holds more", a, schema, func(seg *datapb.CompactionSegmentBinlogs) string {
				fieldBinlog(seg, 101).ChildFields = nil
				return swapIn(seg, 101, 0, key(a, 0, 0), false)
			}, []string{"holds fields [100 0 1]; column group 101 has no child_fields, so it must hold field 101 alone"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				seg := cloneSeg(tc.seg)
				k := tc.damage(seg)
				r, err := segread.Open(ctx, store, tc.schema, seg, segread.Options{BatchRows: 16})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer r.Close()
				err = firstError(t, ctx, r)
				wantAll(t, err, append(tc.want, k, fmt.Sprintf("segment %d", tc.seg.SegmentID))...)
				if !errors.Is(err, corrupt.Err) {
					t.Errorf("error %q is not marked corrupt", err)
				}
			})
		}
	})
}

// cutFooter returns a Parquet file whose footer (the thrift FileMetaData)
// keeps only its first byte, its length adjusted: arrow-go fails with an
// error wrapping io.EOF.
func cutFooter(data []byte) []byte {
	n := len(data)
	size := int(binary.LittleEndian.Uint32(data[n-8:]))
	out := slices.Clone(data[:n-8-size+1])
	out = binary.LittleEndian.AppendUint32(out, 1)
	return append(out, "PAR1"...)
}

// TestV2ReadInPlace: a v2 file larger than DownloadLimit, or of unknown
// size, is never fetched whole: only ranged reads touch it, and the rows
// are the same. v1 binlogs are always downloaded whole.
func TestV2ReadInPlace(t *testing.T) {
	base := objstoretest.Local(t)
	cfg := smallConfig(schemapb.DataType_Int64)
	cfg.StorageVersion, cfg.MixedVersions, cfg.Segments = 2, true, 2
	col := generate(t, base, cfg)
	for _, c := range []struct {
		name  string
		limit int64
		mut   func(*datapb.CompactionSegmentBinlogs)
	}{
		{"over the limit", 1, func(*datapb.CompactionSegmentBinlogs) {}},
		{"unknown size", 0, func(seg *datapb.CompactionSegmentBinlogs) {
			for _, fb := range seg.FieldBinlogs {
				for _, b := range fb.Binlogs {
					b.LogSize = 0
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, seg := range col.Segments {
				seg = proto.Clone(seg).(*datapb.CompactionSegmentBinlogs)
				c.mut(seg)
				want := readAll(t, base, col.Schema, col.Segments[i], segread.Options{})
				rec := &splitRecorder{Store: base}
				got := readAll(t, rec, col.Schema, seg, segread.Options{DownloadLimit: c.limit})
				for _, f := range col.Schema.Fields {
					if !array.Equal(got[f.FieldID], want[f.FieldID]) {
						t.Errorf("segment %d field %d differs from the downloaded read", seg.SegmentID, f.FieldID)
					}
				}
				releaseAll(got)
				releaseAll(want)
				if seg.StorageVersion == 2 {
					if len(rec.whole) != 0 || len(rec.ranged) == 0 {
						t.Errorf("v2 segment %d: whole GETs %v, %d ranged; want none whole", seg.SegmentID, rec.whole, len(rec.ranged))
					}
				} else if len(rec.ranged) != 0 || len(rec.whole) == 0 {
					t.Errorf("v1 segment %d: ranged GETs %v, %d whole; want v1 binlogs downloaded whole", seg.SegmentID, rec.ranged, len(rec.whole))
				}
			}
		})
	}
}

// splitRecorder records whole and ranged GETs apart.
type splitRecorder struct {
	objstore.Store
	mu            sync.Mutex
	whole, ranged []string
}

func (s *splitRecorder) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.whole = append(s.whole, key)
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *splitRecorder) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	s.ranged = append(s.ranged, key)
	s.mu.Unlock()
	return s.Store.GetRange(ctx, key, off, n)
}
