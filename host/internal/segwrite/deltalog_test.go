package segwrite_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func TestWriteDeltalog(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		d := &deltalog.Deletes{}
		for _, r := range []struct {
			pk string
			ts uint64
		}{{"b", 300}, {"a", 100}, {"c", 200}} {
			if err := d.AppendVarChar(r.pk, r.ts); err != nil {
				t.Fatal(err)
			}
		}
		ids := &segwrite.IDRange{Next: 900, End: 901}
		cfg := segwrite.DeltalogConfig{Store: store, Root: "files", CollectionID: 1, PartitionID: 2, SegmentID: 3, LogIDs: ids, Timestamp: 42}
		fb, key, err := segwrite.WriteDeltalog(ctx, cfg, d)
		if err != nil {
			t.Fatal(err)
		}
		if key != "files/delta_log/1/2/3/900" || fb.FieldID != 0 || len(fb.Binlogs) != 1 {
			t.Fatalf("key %q, binlog %v", key, fb)
		}
		b := fb.Binlogs[0]
		data := objstoretest.ReadAll(t, store, key)
		if b.EntriesNum != 3 || b.TimestampFrom != 100 || b.TimestampTo != 300 || b.LogPath != key ||
			b.LogSize != int64(len(data)) || b.LogID != 900 || b.MemorySize != d.MemorySize() {
			t.Fatalf("binlog %v", b)
		}
		got, format, err := deltalog.Read(key, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if format != deltalog.FormatJSON || !slices.Equal(got.StrPKs, d.StrPKs) || !slices.Equal(got.Timestamps, d.Timestamps) {
			t.Fatalf("read back %v %+v", format, got)
		}
		// The range is used up: an error naming it, and no key to clean.
		if _, key, err := segwrite.WriteDeltalog(ctx, cfg, d); err == nil || key != "" || !strings.Contains(err.Error(), "[901, 901) exhausted") {
			t.Fatalf("exhausted range: %q %v", key, err)
		}
		// A failed upload reports no key (nothing of the call's to delete),
		// unless its outcome is unknown.
		fs := &failingStore{Store: store}
		cfg.Store, cfg.LogIDs = fs, &segwrite.IDRange{Next: 7, End: 8}
		if _, key, err := segwrite.WriteDeltalog(ctx, cfg, d); err == nil || key != "" {
			t.Fatalf("failed upload: %q %v", key, err)
		}
		fs.fail = objstore.ErrUnknownOutcome
		cfg.LogIDs = &segwrite.IDRange{Next: 7, End: 8}
		if _, key, err := segwrite.WriteDeltalog(ctx, cfg, d); !errors.Is(err, objstore.ErrUnknownOutcome) || key != "files/delta_log/1/2/3/7" {
			t.Fatalf("upload with an unknown outcome: %q %v", key, err)
		}
		// An existing object is never replaced: the call fails naming the
		// key and reports no key to delete.
		cfg.Store, cfg.LogIDs = store, &segwrite.IDRange{Next: 900, End: 901}
		before := objstoretest.ReadAll(t, store, "files/delta_log/1/2/3/900")
		if _, key, err := segwrite.WriteDeltalog(ctx, cfg, d); !errors.Is(err, objstore.ErrExist) || key != "" ||
			!strings.Contains(err.Error(), `"files/delta_log/1/2/3/900"`) {
			t.Fatalf("existing key: %q %v", key, err)
		}
		if got := objstoretest.ReadAll(t, store, "files/delta_log/1/2/3/900"); !bytes.Equal(got, before) {
			t.Fatal("WriteDeltalog changed an existing object")
		}
	})
}

// TestSparseAppends appends one row in ten, one row at a time, so the
// chunk's pieces keep many source batches alive and get compacted; the
// output must still hold exactly the chosen rows.
func TestSparseAppends(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_VarChar), 500)
	w, _ := newWriter(t, store, in, 16<<10, nil)
	ctx := context.Background()
	var picked []int
	row := 0
	for _, b := range in.batches {
		for i := 0; i < b.Rows; i++ {
			if (row+i)%10 == 3 {
				if err := w.Append(ctx, 0, b.Columns, i, 1); err != nil {
					t.Fatal(err)
				}
				picked = append(picked, row+i)
			}
		}
		row += b.Rows
	}
	segs, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].NumOfRows != int64(len(picked)) {
		t.Fatalf("segments %v", segs)
	}
	for _, fb := range segs[0].InsertLogs {
		f := fieldOf(in.col.Schema, fb.FieldID)
		var parts []arrow.Array
		for _, b := range fb.Binlogs {
			a, _ := readBinlog(t, store, b.LogPath, f)
			parts = append(parts, a)
		}
		i := 0
		for _, p := range parts {
			for j := 0; j < p.Len(); j++ {
				src := picked[i]
				if !array.SliceEqual(p, int64(j), int64(j+1), in.all[fb.FieldID], int64(src), int64(src+1)) {
					t.Fatalf("field %d output row %d differs from input row %d", fb.FieldID, i, src)
				}
				i++
			}
			p.Release()
		}
		if i != len(picked) {
			t.Fatalf("field %d: %d rows, want %d", fb.FieldID, i, len(picked))
		}
	}
}

func fieldOf(s *schemapb.CollectionSchema, id int64) *schemapb.FieldSchema {
	for _, f := range s.Fields {
		if f.FieldID == id {
			return f
		}
	}
	return nil
}
