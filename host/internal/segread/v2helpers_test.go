package segread_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/coltest"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

const (
	testColl = int64(7001)
	testPart = int64(7002)
)

// segSpec describes a segment writeSegment writes.
type segSpec struct {
	id      int64
	version int64 // 0: v1 binlogs; 2: v2 column-group files
	chunks  []int // rows per chunk
	split   packed.SplitPolicy
	// legacy writes what 2.6 pre-release builds wrote: FieldBinlogs without
	// child_fields, uncompressed files without statistics carrying
	// row_group_size instead of row_group_metadata and storage_version.
	legacy bool
}

// writeSegment writes a segment of schema under root and returns its
// metadata and every field's rows.
func writeSegment(t testing.TB, store objstore.Store, root string, schema *schemapb.CollectionSchema, spec segSpec) (*datapb.CompactionSegmentBinlogs, map[int64]arrow.Array) {
	t.Helper()
	ctx := context.Background()
	seg := &datapb.CompactionSegmentBinlogs{SegmentID: spec.id, CollectionID: testColl, PartitionID: testPart, StorageVersion: spec.version}
	fields := packed.AllFields(schema)
	var groups []packed.Group
	if spec.version == 2 {
		var err error
		if groups, err = packed.SplitGroups(schema, spec.split, nil); err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			fb := &datapb.FieldBinlog{FieldID: g.ID}
			if !spec.legacy {
				fb.ChildFields = g.Fields
			}
			seg.FieldBinlogs = append(seg.FieldBinlogs, fb)
		}
	} else {
		for _, f := range fields {
			seg.FieldBinlogs = append(seg.FieldBinlogs, &datapb.FieldBinlog{FieldID: f.GetFieldID()})
		}
	}
	parts := map[int64][]arrow.Array{}
	logID := spec.id * 1000
	put := func(fb *datapb.FieldBinlog, id int64, data []byte, rows int) {
		logID++
		key := milvuspath.InsertLog(root, testColl, testPart, spec.id, id, logID)
		if err := store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		fb.Binlogs = append(fb.Binlogs, &datapb.Binlog{LogID: logID, LogPath: key, LogSize: int64(len(data)), EntriesNum: int64(rows)})
	}
	base := 0
	for _, n := range spec.chunks {
		cols := map[int64]arrow.Array{}
		for _, f := range fields {
			cols[f.GetFieldID()] = coltest.Column(t, f, base, n)
			parts[f.GetFieldID()] = append(parts[f.GetFieldID()], cols[f.GetFieldID()])
		}
		for i, fb := range seg.FieldBinlogs {
			if spec.version != 2 {
				var buf bytes.Buffer
				f := fields[i]
				desc := binlog.Descriptor{CollectionID: testColl, PartitionID: testPart, SegmentID: spec.id,
					FieldID: f.GetFieldID(), PayloadType: f.GetDataType()}
				if _, err := binlog.EncodeInsert(&buf, desc, f, cols[f.GetFieldID()], binlog.WriterOptions{}); err != nil {
					t.Fatal(err)
				}
				put(fb, f.GetFieldID(), buf.Bytes(), n)
				continue
			}
			g := groups[i]
			gcols := make([]arrow.Array, len(g.Fields))
			for j, id := range g.Fields {
				gcols[j] = cols[id]
			}
			if spec.legacy {
				put(fb, g.ID, legacyFile(t, groups, g, fields, gcols), n)
				continue
			}
			w, err := packed.NewWriter(groups, g.ID, fields, packed.WriterOptions{RowGroupBytes: 4 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(gcols); err != nil {
				t.Fatal(err)
			}
			data, _, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			put(fb, g.ID, data, n)
		}
		base += n
	}
	want := map[int64]arrow.Array{}
	for id, ps := range parts {
		want[id] = concat(t, ps)
	}
	return seg, want
}

// legacyFile writes a group file as 2.6 pre-release builds did: no
// compression, no statistics, two row groups and the row_group_size key
// (raw little-endian memory sizes) instead of row_group_metadata and
// storage_version.
func legacyFile(t testing.TB, groups []packed.Group, g packed.Group, fields []*schemapb.FieldSchema, cols []arrow.Array) []byte {
	t.Helper()
	afs := make([]arrow.Field, len(g.Fields))
	for i, id := range g.Fields {
		for _, f := range fields {
			if f.GetFieldID() == id {
				af, err := packed.ArrowField(f)
				if err != nil {
					t.Fatal(err)
				}
				afs[i] = af
			}
		}
	}
	sc := arrow.NewSchema(afs, nil)
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Uncompressed), parquet.WithStats(false))
	fw, err := pqarrow.NewFileWriter(sc, &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	n := int64(cols[0].Len())
	var sizes []byte
	for _, rg := range [][2]int64{{0, n / 2}, {n / 2, n}} {
		parts := make([]arrow.Array, len(cols))
		for i, c := range cols {
			parts[i] = array.NewSlice(c, rg[0], rg[1])
		}
		rec := array.NewRecordBatch(sc, parts, rg[1]-rg[0])
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		release(parts)
		sizes = binary.LittleEndian.AppendUint64(sizes, uint64(100+len(sizes))) // bytes < 0x80: arrow-go wants UTF-8 metadata
	}
	for _, kv := range [][2]string{{packed.KeyGroupFieldIDList, packed.FormatGroupFieldIDList(groups)}, {packed.KeyLegacyRowGroupSize, string(sizes)}} {
		if err := fw.AppendKeyValueMetadata(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func release(cols []arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}

// recordingStore remembers the keys Get and GetRange were called for.
type recordingStore struct {
	objstore.Store
	mu   sync.Mutex
	keys []string
}

func (s *recordingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.record(key)
	return s.Store.Get(ctx, key)
}

func (s *recordingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.record(key)
	return s.Store.GetRange(ctx, key, off, n)
}

func (s *recordingStore) record(key string) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
}
