package gen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/statslog"
	"github.com/compacthost/compacthost/storage/tso"
)

func smallConfig(pk schemapb.DataType, deletes DeleteDistribution) Config {
	c := DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 3, 2500, 1000, 8
	c.PKType, c.Deletes = pk, deletes
	c.L0Deletes = 500
	return c
}

// TestGenerateReadBack writes collections, reads every object back through the storage codecs
// and recomputes the deleted/expired/kept counts from the bytes alone, with Milvus's rules.
func TestGenerateReadBack(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		for _, dist := range []DeleteDistribution{DeleteUniform, DeleteClustered} {
			t.Run(pk.String()+"/"+dist.String(), func(t *testing.T) {
				objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
					cfg := smallConfig(pk, dist)
					col, err := Generate(context.Background(), store, cfg)
					if err != nil {
						t.Fatal(err)
					}
					checkCollection(t, store, col)
				})
			})
		}
	}
}

func checkCollection(t *testing.T, store objstore.Store, col *Collection) {
	t.Helper()
	cfg := col.Config
	plan := col.MixPlan
	if err := milvuspath.FillPlan(cfg.RootPath, plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.SegmentBinlogs) != cfg.Segments {
		t.Fatalf("mix plan has %d segments, want %d", len(plan.SegmentBinlogs), cfg.Segments)
	}
	var got Expected
	nowMs := tso.Physical(uint64(plan.StartTime))
	ttl := time.Duration(plan.CollectionTtl)
	for _, seg := range plan.SegmentBinlogs {
		dm := readDeleteMap(t, store, cfg.PKType, seg)
		pks, ts := readPKAndTS(t, store, col.Schema, seg)
		if len(ts) != cfg.RowsPerSegment {
			t.Fatalf("segment %d: read %d rows, want %d", seg.SegmentID, len(ts), cfg.RowsPerSegment)
		}
		stats := readStats(t, store, seg)
		for i, rowTS := range ts {
			got.Rows++
			var deleted bool
			switch p := pks[i].(type) {
			case int64:
				deleted = dm.DeletedInt64(p, rowTS)
				if !stats.MayContain(statslog.PK{Int: p}) {
					t.Fatalf("segment %d: stats log rejects its own pk %d", seg.SegmentID, p)
				}
			case string:
				deleted = dm.DeletedVarChar(p, rowTS)
				if !stats.MayContain(statslog.PK{Str: p}) {
					t.Fatalf("segment %d: stats log rejects its own pk %q", seg.SegmentID, p)
				}
			}
			switch {
			case deleted:
				got.Deleted++
			case tso.Expired(rowTS, nowMs, ttl):
				got.Expired++
			default:
				got.Kept++
			}
		}
	}
	want := col.Expected
	if got.Rows != want.Rows || got.Deleted != want.Deleted || got.Expired != want.Expired || got.Kept != want.Kept {
		t.Fatalf("recomputed outcome %+v, generator promised %+v", got, want)
	}
	if want.Deleted == 0 || want.Expired == 0 || want.Kept == 0 {
		t.Fatalf("degenerate collection: %+v", want)
	}
	if col.L0Plan == nil || len(col.L0) != cfg.L0Segments {
		t.Fatalf("want %d L0 segments and an L0 plan", cfg.L0Segments)
	}
	if err := milvuspath.FillPlan(cfg.RootPath, col.L0Plan); err != nil {
		t.Fatal(err)
	}
	for _, seg := range col.L0Plan.SegmentBinlogs {
		if seg.Level == datapb.SegmentLevel_L0 {
			if n := readDeletes(t, store, seg).Len(); n != cfg.L0Deletes {
				t.Fatalf("L0 segment %d has %d deletes, want %d", seg.SegmentID, n, cfg.L0Deletes)
			}
		} else if len(seg.FieldBinlogs) != 0 || len(seg.Field2StatslogPaths) != 1 {
			t.Fatalf("L0 target %d must carry only its stats log", seg.SegmentID)
		}
	}
}

func readDeletes(t *testing.T, store objstore.Store, seg *datapb.CompactionSegmentBinlogs) *deltalog.Deletes {
	t.Helper()
	all := &deltalog.Deletes{}
	for _, fb := range seg.Deltalogs {
		for _, b := range fb.Binlogs {
			data := objstoretest.ReadAll(t, store, b.LogPath)
			d, _, err := deltalog.Read(b.LogPath, bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if err := all.Append(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	return all
}

func readDeleteMap(t *testing.T, store objstore.Store, pkType schemapb.DataType, seg *datapb.CompactionSegmentBinlogs) *deltalog.Map {
	t.Helper()
	m, err := deltalog.BuildMap(pkType, readDeletes(t, store, seg))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readStats(t *testing.T, store objstore.Store, seg *datapb.CompactionSegmentBinlogs) *statslog.Stats {
	t.Helper()
	key := seg.Field2StatslogPaths[0].Binlogs[0].LogPath
	list, err := statslog.Decode(key, objstoretest.ReadAll(t, store, key))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%s: %d stats, want 1", key, len(list))
	}
	return list[0]
}

// readPKAndTS reads the pk and timestamp columns of a segment, checking that every field has
// the same chunk row counts and that metadata matches the files.
func readPKAndTS(t *testing.T, store objstore.Store, schema *schemapb.CollectionSchema, seg *datapb.CompactionSegmentBinlogs) ([]any, []uint64) {
	t.Helper()
	fields := map[int64]*schemapb.FieldSchema{}
	for _, f := range schema.Fields {
		fields[f.FieldID] = f
	}
	if len(seg.FieldBinlogs) != len(schema.Fields) {
		t.Fatalf("segment %d has binlogs for %d fields, want %d", seg.SegmentID, len(seg.FieldBinlogs), len(schema.Fields))
	}
	var pks []any
	var ts []uint64
	for _, fb := range seg.FieldBinlogs {
		for _, b := range fb.Binlogs {
			data := objstoretest.ReadAll(t, store, b.LogPath)
			if int64(len(data)) != b.LogSize {
				t.Fatalf("%s: log_size %d, object has %d bytes", b.LogPath, b.LogSize, len(data))
			}
			r, err := binlog.NewInsertReader(b.LogPath, bytes.NewReader(data), int64(len(data)), fields[fb.FieldID], 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.NumRows() != b.EntriesNum {
				t.Fatalf("%s: entries_num %d, file has %d rows", b.LogPath, b.EntriesNum, r.NumRows())
			}
			for {
				a, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch fb.FieldID {
				case TimestampField:
					for _, v := range a.(*array.Int64).Int64Values() {
						ts = append(ts, uint64(v))
					}
				case PKField:
					switch c := a.(type) {
					case *array.Int64:
						for _, v := range c.Int64Values() {
							pks = append(pks, v)
						}
					case *array.String:
						for i := range c.Len() {
							pks = append(pks, c.Value(i))
						}
					}
				}
				a.Release()
			}
			r.Close()
		}
	}
	return pks, ts
}

// TestGenerateDeterministic: the same config writes the same bytes under the same keys, in
// storage v1, v2 and mixed.
func TestGenerateDeterministic(t *testing.T) {
	for _, v := range []struct {
		version int64
		mixed   bool
	}{{0, false}, {2, false}, {2, true}} {
		cfg := smallConfig(schemapb.DataType_Int64, DeleteClustered)
		cfg.Segments, cfg.RowsPerSegment = 2, 700
		cfg.StorageVersion, cfg.MixedVersions = v.version, v.mixed
		a, b := objstoretest.Local(t), objstoretest.Local(t)
		for _, s := range []objstore.Store{a, b} {
			if _, err := Generate(context.Background(), s, cfg); err != nil {
				t.Fatal(err)
			}
		}
		la, _ := a.List(context.Background(), "")
		lb, _ := b.List(context.Background(), "")
		if len(la) == 0 || len(la) != len(lb) {
			t.Fatalf("version %d mixed %v: object counts differ: %d vs %d", v.version, v.mixed, len(la), len(lb))
		}
		for i := range la {
			if la[i].Key != lb[i].Key || !bytes.Equal(objstoretest.ReadAll(t, a, la[i].Key), objstoretest.ReadAll(t, b, lb[i].Key)) {
				t.Fatalf("version %d mixed %v: object %s differs between two runs", v.version, v.mixed, la[i].Key)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Segments, c.PKType, c.ExpiredFraction, c.TTL = 0, schemapb.DataType_Float, 0.5, 0
	c.StorageVersion, c.MixedVersions = 3, true
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"segments must be >= 1", "primary key type must be Int64 or VarChar", "needs a TTL",
		"storage version must be 0, 1 (v1) or 2 (v2), got 3", "mixed versions need storage version 2"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
