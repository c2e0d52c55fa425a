package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/packed"
)

// TestGenerateV2MatchesV1 writes the same seed as storage v1, v2 and mixed, reads every v2
// column-group file back with packed.NewReader (keys rebuilt from the compressed plan, so from
// FieldBinlog.fieldID = group ID) and checks every field's values, the deletes and the promised
// outcome against the v1 collection, and the v2 segment meta against milvus-storage-v2.md §5-§6.
func TestGenerateV2MatchesV1(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
				ctx := context.Background()
				cfg := smallConfig(pk, DeleteClustered)
				cfg.RootPath = "v1"
				v1, err := Generate(ctx, store, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want := collectionValues(t, store, v1)
				for _, mixed := range []bool{false, true} {
					c := cfg
					c.StorageVersion, c.MixedVersions, c.RootPath = 2, mixed, "v2"
					if mixed {
						c.RootPath = "mixed"
					}
					col, err := Generate(ctx, store, c)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(col.Expected, v1.Expected) {
						t.Fatalf("mixed=%v: expected outcome %+v, the v1 collection's is %+v", mixed, col.Expected, v1.Expected)
					}
					checkVersions(t, col)
					got := collectionValues(t, store, col)
					for s := range want {
						for id, vals := range want[s] {
							if !slices.Equal(got[s][id], vals) {
								t.Fatalf("mixed=%v segment %d field %d: values differ from v1 (%d vs %d values)",
									mixed, s, id, len(got[s][id]), len(vals))
							}
						}
						if len(got[s]) != len(want[s]) {
							t.Fatalf("mixed=%v segment %d: %d fields, v1 has %d", mixed, s, len(got[s]), len(want[s]))
						}
					}
					for i, seg := range col.MixPlan.SegmentBinlogs {
						if a, b := readDeletes(t, store, seg).Len(), readDeletes(t, store, v1.MixPlan.SegmentBinlogs[i]).Len(); a != b {
							t.Fatalf("segment %d: %d deletes, v1 has %d", seg.SegmentID, a, b)
						}
					}
				}
			})
		})
	}
}

// checkVersions checks the versions and the v2 segment meta of a collection.
func checkVersions(t *testing.T, col *Collection) {
	t.Helper()
	wantGroups := []packed.Group{
		{ID: 0, Fields: []int64{RowIDField, TimestampField, PKField}},
		{ID: 1, Fields: []int64{CategoryField, PriceField, TitleField, InStockField, MetaField}},
		{ID: VectorField, Fields: []int64{VectorField}},
	}
	allV2 := true
	for i, seg := range col.Segments {
		v := seg.StorageVersion
		if want := col.Config.SegmentVersion(i); v != want || (col.Config.MixedVersions && i%2 == 1 && v != 0) {
			t.Fatalf("segment %d: storage_version %d, want %d", i, v, want)
		}
		allV2 = allV2 && v == 2
		if v != 2 {
			continue
		}
		if len(seg.FieldBinlogs) != len(wantGroups) {
			t.Fatalf("segment %d: %d FieldBinlogs, want one per group (%d)", i, len(seg.FieldBinlogs), len(wantGroups))
		}
		chunks := len(seg.FieldBinlogs[0].Binlogs)
		var logIDs []int64
		for j := range chunks {
			var from, to uint64
			for k, fb := range seg.FieldBinlogs {
				if fb.FieldID != wantGroups[k].ID || !slices.Equal(fb.ChildFields, wantGroups[k].Fields) {
					t.Fatalf("segment %d FieldBinlog %d: fieldID %d child_fields %v, want %+v", i, k, fb.FieldID, fb.ChildFields, wantGroups[k])
				}
				if len(fb.Binlogs) != chunks {
					t.Fatalf("segment %d group %d: %d files, group 0 has %d", i, fb.FieldID, len(fb.Binlogs), chunks)
				}
				b := fb.Binlogs[j]
				if k == 0 {
					from, to = b.TimestampFrom, b.TimestampTo
				}
				if b.TimestampFrom != from || b.TimestampTo != to || from == 0 || to < from {
					t.Fatalf("segment %d group %d chunk %d: timestamps [%d, %d], group 0 has [%d, %d]", i, fb.FieldID, j, b.TimestampFrom, b.TimestampTo, from, to)
				}
				if b.EntriesNum != seg.FieldBinlogs[0].Binlogs[j].EntriesNum || b.MemorySize <= 0 {
					t.Fatalf("segment %d group %d chunk %d: entries_num %d, memory_size %d", i, fb.FieldID, j, b.EntriesNum, b.MemorySize)
				}
				logIDs = append(logIDs, b.LogID)
			}
		}
		if !slices.IsSorted(logIDs) || len(slices.Compact(slices.Clone(logIDs))) != len(logIDs) {
			t.Fatalf("segment %d: log IDs %v do not ascend in chunk, then group order", i, logIDs)
		}
	}
	for _, p := range []*datapb.CompactionPlan{col.MixPlan, col.L0Plan} {
		var params struct {
			StorageVersion int64 `json:"storage_version"`
		}
		if err := json.Unmarshal([]byte(p.JsonParams), &params); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: 2, false: 0}[allV2]; params.StorageVersion != want {
			t.Fatalf("plan %d: json_params storage_version %d, want %d", p.PlanID, params.StorageVersion, want)
		}
		for _, seg := range p.SegmentBinlogs {
			if seg.Level == datapb.SegmentLevel_L1 && seg.StorageVersion != col.Config.SegmentVersion(int(seg.SegmentID-segmentIDBase)) {
				t.Fatalf("plan %d segment %d: storage_version %d", p.PlanID, seg.SegmentID, seg.StorageVersion)
			}
		}
	}
}

// collectionValues reads every insert file of the mix plan in its segment's version and
// returns, per segment, every field's values rendered as strings.
func collectionValues(t *testing.T, store objstore.Store, col *Collection) []map[int64][]string {
	t.Helper()
	if err := milvuspath.FillPlan(col.Config.RootPath, col.MixPlan); err != nil {
		t.Fatal(err)
	}
	fields := packed.AllFields(col.Schema)
	byID := map[int64]*schemapb.FieldSchema{}
	for _, f := range fields {
		byID[f.FieldID] = f
	}
	var out []map[int64][]string
	for _, seg := range col.MixPlan.SegmentBinlogs {
		vals := map[int64][]string{}
		for _, fb := range seg.FieldBinlogs {
			for _, b := range fb.Binlogs {
				data := objstoretest.ReadAll(t, store, b.LogPath)
				if int64(len(data)) != b.LogSize {
					t.Fatalf("%s: log_size %d, object has %d bytes", b.LogPath, b.LogSize, len(data))
				}
				var rows int64
				if seg.StorageVersion == 2 {
					rows = readPacked(t, b.LogPath, data, fields, fb.ChildFields, vals)
				} else {
					rows = readV1(t, b.LogPath, data, byID[fb.FieldID], vals)
				}
				if rows != b.EntriesNum {
					t.Fatalf("%s: entries_num %d, file has %d rows", b.LogPath, b.EntriesNum, rows)
				}
			}
		}
		out = append(out, vals)
	}
	return out
}

func readPacked(t *testing.T, key string, data []byte, fields []*schemapb.FieldSchema, child []int64, vals map[int64][]string) int64 {
	t.Helper()
	r, err := packed.NewReader(key, bytes.NewReader(data), int64(len(data)), fields, packed.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !slices.Equal(r.FieldIDs(), child) {
		t.Fatalf("%s: columns %v, child_fields %v", key, r.FieldIDs(), child)
	}
	ids := r.FieldIDs()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.NumRows()
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			vals[id] = appendValues(vals[id], rec.Column(i))
		}
		rec.Release()
	}
}

func readV1(t *testing.T, key string, data []byte, f *schemapb.FieldSchema, vals map[int64][]string) int64 {
	t.Helper()
	r, err := binlog.NewInsertReader(key, bytes.NewReader(data), int64(len(data)), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		a, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.NumRows()
		}
		if err != nil {
			t.Fatal(err)
		}
		vals[f.FieldID] = appendValues(vals[f.FieldID], a)
		a.Release()
	}
}

func appendValues(dst []string, a arrow.Array) []string {
	for i := range a.Len() {
		if a.IsNull(i) {
			dst = append(dst, "<null>")
		} else {
			dst = append(dst, a.DataType().String()+":"+a.ValueStr(i))
		}
	}
	return dst
}
