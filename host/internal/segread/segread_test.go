package segread_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func TestReadsExactlyWhatGenWrote(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			col := generate(t, store, func() gen.Config {
				c := smallConfig(pk)
				c.RootPath = "files-" + pk.String()
				return c
			}())
			for _, opts := range []segread.Options{
				{BatchRows: 300, Prefetch: 1, Parallelism: 2},
				{BatchRows: 1024},
				{BatchRows: 7, Prefetch: 3, Parallelism: 1},
			} {
				t.Run(fmt.Sprintf("%v/batch%d", pk, opts.BatchRows), func(t *testing.T) {
					for _, seg := range col.Segments {
						got := readAll(t, store, col.Schema, seg, opts)
						for _, f := range col.Schema.Fields {
							want := directRead(t, store, seg, f)
							if !array.Equal(got[f.FieldID], want) {
								t.Errorf("segment %d field %d: segread rows differ from a direct binlog read", seg.SegmentID, f.FieldID)
							}
							want.Release()
						}
						checkRowSizes(t, col.Schema, got)
						releaseAll(got)
					}
				})
			}
		}
	})
}

// checkRowSizes recomputes every row's size from the values, field by
// field, and compares with segread.RowSizes.
func checkRowSizes(t *testing.T, schema *schemapb.CollectionSchema, cols map[int64]arrow.Array) {
	t.Helper()
	n := cols[gen.PKField].Len()
	got := segread.RowSizes(schema, cols, n)
	for i := range n {
		want := 8 + 8 + 4 + 8 + 1 // RowID, Timestamp, category, price (null or not), in_stock
		switch pk := cols[gen.PKField].(type) {
		case *array.Int64:
			want += 8
		case *array.String:
			want += len(pk.Value(i)) + 4
		}
		want += cols[gen.VectorField].(*array.FixedSizeBinary).DataType().(*arrow.FixedSizeBinaryType).ByteWidth
		title := cols[gen.TitleField].(*array.String)
		want += 4
		if title.IsValid(i) {
			want += len(title.Value(i))
		}
		if meta, ok := cols[gen.MetaField].(*array.Binary); ok {
			want += len(meta.Value(i)) + 4
		}
		if int(got[i]) != want {
			t.Fatalf("row %d: size %d, want %d", i, got[i], want)
		}
	}
}

func TestMissingChunksAndFields(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallConfig(schemapb.DataType_Int64))
	seg := cloneSeg(col.Segments[0])
	// The title field (nullable) lost its first chunk; price (nullable) has no binlogs at all.
	title := fieldBinlog(seg, gen.TitleField)
	title.Binlogs = title.Binlogs[1:]
	price := fieldBinlog(seg, gen.PriceField)
	price.Binlogs = nil

	got := readAll(t, store, col.Schema, seg, segread.Options{BatchRows: 333})
	defer releaseAll(got)
	full := directRead(t, store, col.Segments[0], field(col.Schema, gen.TitleField))
	defer full.Release()
	tc := got[gen.TitleField]
	for i := range tc.Len() {
		if i < 1000 {
			if tc.IsValid(i) {
				t.Fatalf("title row %d of the missing first chunk is not null", i)
			}
		} else if !array.SliceEqual(tc, int64(i), int64(i+1), full, int64(i), int64(i+1)) {
			t.Fatalf("title row %d differs from the binlog", i)
		}
	}
	if pc := got[gen.PriceField]; pc.NullN() != pc.Len() || pc.Len() != 2500 {
		t.Fatalf("price: %d nulls in %d rows, want all of 2500", pc.NullN(), pc.Len())
	}
	pk := directRead(t, store, col.Segments[0], field(col.Schema, gen.PKField))
	defer pk.Release()
	if !array.Equal(pk, got[gen.PKField]) {
		t.Fatal("pk column changed")
	}
}

func TestMissingFieldDefaultValue(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallConfig(schemapb.DataType_Int64))
	seg := cloneSeg(col.Segments[0])
	fieldBinlog(seg, gen.CategoryField).Binlogs = nil
	schema := cloneSchema(col.Schema)
	field(schema, gen.CategoryField).DefaultValue = &schemapb.ValueField{Data: &schemapb.ValueField_IntData{IntData: 77}}
	got := readAll(t, store, schema, seg, segread.Options{BatchRows: 1000})
	defer releaseAll(got)
	c := got[gen.CategoryField].(*array.Int32)
	if c.Len() != 2500 || c.NullN() != 0 {
		t.Fatalf("category: %d rows, %d nulls", c.Len(), c.NullN())
	}
	for i, v := range c.Int32Values() {
		if v != 77 {
			t.Fatalf("category row %d = %d, want the default 77", i, v)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallConfig(schemapb.DataType_Int64))
	base := col.Segments[0]
	cases := []struct {
		name   string
		damage func(seg *datapb.CompactionSegmentBinlogs)
		want   []string
	}{
		{"missing non-nullable chunk", func(seg *datapb.CompactionSegmentBinlogs) {
			fb := fieldBinlog(seg, gen.CategoryField)
			fb.Binlogs = fb.Binlogs[1:]
		}, []string{"segment 450000000000000100", "field 102 (category)", "2 of 3 binlog chunks", "neither nullable nor has a default"}},
		{"missing non-nullable field", func(seg *datapb.CompactionSegmentBinlogs) {
			fieldBinlog(seg, gen.InStockField).Binlogs = nil
		}, []string{"field 105 (in_stock)", "0 of 3"}},
		{"unequal entries_num", func(seg *datapb.CompactionSegmentBinlogs) {
			fieldBinlog(seg, gen.VectorField).Binlogs[1].EntriesNum = 999
		}, []string{"chunk 1", fieldBinlog(base, gen.VectorField).Binlogs[1].LogPath, "entries_num 999", "1000"}},
		{"no entries_num in a chunk", func(seg *datapb.CompactionSegmentBinlogs) {
			for _, fb := range seg.FieldBinlogs {
				fb.Binlogs[2].EntriesNum = 0
			}
		}, []string{"chunk 2", "no binlog has a positive entries_num"}},
		{"empty log path", func(seg *datapb.CompactionSegmentBinlogs) {
			fieldBinlog(seg, gen.PKField).Binlogs[0].LogPath = ""
		}, []string{"field 100", "no log_path"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seg := cloneSeg(base)
			tc.damage(seg)
			r, err := segread.Open(context.Background(), store, col.Schema, seg, segread.Options{})
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			wantAll(t, err, tc.want...)
		})
	}
}

// TestNextErrors damages objects or metadata so that Open succeeds and a
// later Next fails, naming the key.
func TestNextErrors(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		col := generate(t, store, smallConfig(schemapb.DataType_VarChar))
		base := col.Segments[0]
		titleKeys := fieldBinlog(base, gen.TitleField).Binlogs
		priceKey := fieldBinlog(base, gen.PriceField).Binlogs[2].LogPath
		corrupt := priceKey + "99" // a damaged copy, used by one case only
		data := objstoretest.ReadAll(t, store, priceKey)
		data[len(data)/2] ^= 0xff // inside the Parquet payload
		data = append(data[:len(data)-40:len(data)-40], []byte("not the parquet footer you are looking for")...)
		if err := store.Put(ctx, corrupt, strings.NewReader(string(data)), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name   string
			damage func(seg *datapb.CompactionSegmentBinlogs)
			want   []string
		}{
			{"missing object", func(seg *datapb.CompactionSegmentBinlogs) {
				fieldBinlog(seg, gen.VectorField).Binlogs[1].LogPath += "0"
			}, []string{"field 101 (embedding)", fieldBinlog(base, gen.VectorField).Binlogs[1].LogPath + "0"}},
			{"corrupt binlog", func(seg *datapb.CompactionSegmentBinlogs) {
				fieldBinlog(seg, gen.PriceField).Binlogs[2].LogPath = corrupt
			}, []string{"field 103 (price)", corrupt}},
			{"payload rows differ from entries_num", func(seg *datapb.CompactionSegmentBinlogs) {
				// chunk 1 of title points at chunk 2's 500-row file.
				fieldBinlog(seg, gen.TitleField).Binlogs[1].LogPath = titleKeys[2].LogPath
			}, []string{"field 104 (title)", "chunk 1", titleKeys[2].LogPath, "holds 500 rows but the chunk's entries_num is 1000"}},
			{"unset entries_num", func(seg *datapb.CompactionSegmentBinlogs) {
				// chunk 2 of title points at chunk 0's 1000-row file; the others hold 500 rows.
				fieldBinlog(seg, gen.TitleField).Binlogs[2].LogPath = titleKeys[0].LogPath
				fieldBinlog(seg, gen.TitleField).Binlogs[2].EntriesNum = 0
			}, []string{"field 104 (title)", "chunk 2", titleKeys[0].LogPath, "holds 1000 rows but the chunk's entries_num is 500"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				seg := cloneSeg(base)
				tc.damage(seg)
				r, err := segread.Open(ctx, store, col.Schema, seg, segread.Options{BatchRows: 400})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer r.Close()
				err = firstError(t, ctx, r)
				wantAll(t, err, append(tc.want, "segment 450000000000000100")...)
				if _, again := r.Next(ctx); again != err {
					t.Errorf("Next after an error: %v", again)
				}
			})
		}
	})
}

func TestCloseMidSegmentAndCancel(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallConfig(schemapb.DataType_Int64))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := segread.Open(ctx, store, col.Schema, col.Segments[0], segread.Options{BatchRows: 100, Prefetch: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestEmptySegment(t *testing.T) {
	store := objstoretest.Local(t)
	schema := gen.Schema(smallConfig(schemapb.DataType_Int64))
	r, err := segread.Open(context.Background(), store, schema, &datapb.CompactionSegmentBinlogs{SegmentID: 9}, segread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(context.Background()); !errors.Is(err, io.EOF) || r.NumRows() != 0 {
		t.Fatalf("Next = %v, NumRows %d", err, r.NumRows())
	}
}

func TestReadDeletes(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			c := smallConfig(pk)
			c.RootPath = "files-" + pk.String()
			col := generate(t, store, c)
			seg := cloneSeg(col.Segments[1])
			key := seg.Deltalogs[0].Binlogs[0].LogPath
			data := objstoretest.ReadAll(t, store, key)
			one, _, err := deltalog.Read(key, strings.NewReader(string(data)), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			// Two FieldBinlogs, the second with two files: three copies in list order.
			seg.Deltalogs = append(seg.Deltalogs, cloneSeg(seg).Deltalogs[0])
			seg.Deltalogs[1].Binlogs = append(seg.Deltalogs[1].Binlogs, seg.Deltalogs[0].Binlogs[0])
			d, err := segread.ReadDeletes(ctx, store, pk, seg)
			if err != nil {
				t.Fatal(err)
			}
			n := one.Len()
			if d.Len() != 3*n || d.PKType != pk {
				t.Fatalf("%v: %d deletes of type %v, want %d", pk, d.Len(), d.PKType, 3*n)
			}
			for i := range d.Len() {
				j := i % n
				if d.Timestamps[i] != one.Timestamps[j] ||
					(pk == schemapb.DataType_Int64 && d.IntPKs[i] != one.IntPKs[j]) ||
					(pk == schemapb.DataType_VarChar && d.StrPKs[i] != one.StrPKs[j]) {
					t.Fatalf("%v: delete %d differs from record %d of the file", pk, i, j)
				}
			}
			other := schemapb.DataType_Int64
			if pk == other {
				other = schemapb.DataType_VarChar
			}
			if _, err := segread.ReadDeletes(ctx, store, other, seg); err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("%v deltalog read as %v: %v", pk, other, err)
			}
		}
		// No deltalogs: empty deletes of the pk type; a missing object names its key.
		empty, err := segread.ReadDeletes(ctx, store, schemapb.DataType_Int64, &datapb.CompactionSegmentBinlogs{SegmentID: 5})
		if err != nil || empty.Len() != 0 || empty.PKType != schemapb.DataType_Int64 {
			t.Fatalf("empty: %v %+v", err, empty)
		}
		missing := &datapb.CompactionSegmentBinlogs{SegmentID: 5, Deltalogs: []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{LogPath: "files/delta_log/1/2/5/77"}}}}}
		if _, err := segread.ReadDeletes(ctx, store, schemapb.DataType_Int64, missing); !errors.Is(err, objstore.ErrNotExist) ||
			!strings.Contains(err.Error(), "files/delta_log/1/2/5/77") || !strings.Contains(err.Error(), "segment 5") {
			t.Fatalf("missing deltalog: %v", err)
		}
	})
}

func TestRowSizesNullsAndMissing(t *testing.T) {
	dim := func(d string) []*commonpb.KeyValuePair { return []*commonpb.KeyValuePair{{Key: "dim", Value: d}} }
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 1, DataType: schemapb.DataType_Int16},
		{FieldID: 2, DataType: schemapb.DataType_JSON, Nullable: true},
		{FieldID: 3, DataType: schemapb.DataType_Float, Nullable: true},
		{FieldID: 4, DataType: schemapb.DataType_VarChar},
		{FieldID: 5, DataType: schemapb.DataType_BinaryVector, TypeParams: dim("12")},
		{FieldID: 6, DataType: schemapb.DataType_Float16Vector, TypeParams: dim("3")},
		{FieldID: 7, DataType: schemapb.DataType_Bool},
	}}
	col := binaryOf([]string{`{"a":1}`, "", "xyz"}, []bool{true, false, true})
	defer col.Release()
	// Only field 2 is given: fixed widths still count (2, 4, 2, 6, 1), variable ones count 4 each.
	got := segread.RowSizes(schema, map[int64]arrow.Array{2: col}, 3)
	fixed := uint32(2 + 4 + 2 + 6 + 1)
	want := []uint32{fixed + 7 + 4 + 4, fixed + 4 + 4, fixed + 3 + 4 + 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row sizes %v, want %v", got, want)
		}
	}
}

// TestLogIDFromKey: metadata without logIDs (older DataCoords) is ordered
// by the number the key ends with; chunk order still follows logIDs, not
// list order.
func TestLogIDFromKey(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallConfig(schemapb.DataType_Int64))
	seg := cloneSeg(col.Segments[0])
	for _, fb := range seg.FieldBinlogs {
		for _, b := range fb.Binlogs {
			b.LogID = 0
		}
		fb.Binlogs[0], fb.Binlogs[2] = fb.Binlogs[2], fb.Binlogs[0]
	}
	got := readAll(t, store, col.Schema, seg, segread.Options{BatchRows: 512})
	defer releaseAll(got)
	for _, f := range col.Schema.Fields {
		want := directRead(t, store, col.Segments[0], f)
		if !array.Equal(got[f.FieldID], want) {
			t.Errorf("field %d differs", f.FieldID)
		}
		want.Release()
	}
	fieldBinlog(seg, gen.PKField).Binlogs[1].LogPath = "files/insert_log/x"
	if _, err := segread.Open(context.Background(), store, col.Schema, seg, segread.Options{}); err == nil ||
		!strings.Contains(err.Error(), `binlog "files/insert_log/x" has no logID`) {
		t.Fatalf("Open: %v", err)
	}
}
