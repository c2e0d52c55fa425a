package reference

import (
	"context"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/statslog"
)

// segmentPKs reads the set of pks of every L1 segment of the collection.
func segmentPKs(t *testing.T, store objstore.Store, col *gen.Collection) map[int64]map[any]bool {
	t.Helper()
	p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(col.Config.RootPath, p); err != nil {
		t.Fatal(err)
	}
	pkf, _, err := pkField(p.Schema)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]map[any]bool{}
	for _, s := range p.SegmentBinlogs {
		tbl, err := readInsert(context.Background(), store, s.SegmentID, []*schemapb.FieldSchema{pkf}, s.FieldBinlogs)
		if err != nil {
			t.Fatal(err)
		}
		out[s.SegmentID] = map[any]bool{}
		for _, pk := range tbl.cols[0] {
			out[s.SegmentID][pk] = true
		}
	}
	return out
}

// TestL0RoutesEveryTrueHit: every L0 delete of a pk a target holds reaches
// it (exactly gen's count), records keep their L0 order, and the few extra
// records are bloom false positives inside the target's pk range.
func TestL0RoutesEveryTrueHit(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			cfg := smallConfig(pk, gen.DeleteUniform, false)
			cfg.L0Segments = 2
			store, col := generate(t, cfg)
			res, err := L0(context.Background(), store, cfg.RootPath, col.L0Plan)
			if err != nil {
				t.Fatal(err)
			}
			pks := segmentPKs(t, store, col)
			var all []Delete
			p := proto.Clone(col.L0Plan).(*datapb.CompactionPlan)
			if err := milvuspath.FillPlan(cfg.RootPath, p); err != nil {
				t.Fatal(err)
			}
			for _, s := range p.SegmentBinlogs[:cfg.L0Segments] {
				d, err := readDeletes(context.Background(), store, s.SegmentID, pk, s.Deltalogs)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, d...)
			}
			if len(all) != cfg.L0Segments*cfg.L0Deletes {
				t.Fatalf("%d L0 records, want %d", len(all), cfg.L0Segments*cfg.L0Deletes)
			}
			falsePos := 0
			for id, want := range col.Expected.L0Hits {
				routed := res.Targets[id]
				trueHits, j := 0, 0
				for _, r := range routed {
					for j < len(all) && all[j] != r { // routed must be a subsequence of all
						j++
					}
					if j == len(all) {
						t.Fatalf("segment %d: routed records are not in L0 order (at %v)", id, r)
					}
					j++
					if pks[id][r.PK] {
						trueHits++
					} else {
						falsePos++
					}
				}
				if trueHits != want {
					t.Fatalf("segment %d: %d true hits routed, gen expects %d", id, trueHits, want)
				}
			}
			if len(res.Targets) != len(col.Expected.L0Hits) || len(res.Order) != len(res.Targets) {
				t.Fatalf("%d targets hit (order %v), want %d", len(res.Targets), res.Order, len(col.Expected.L0Hits))
			}
			if falsePos > len(all)/100 {
				t.Fatalf("%d false positives among %d records", falsePos, len(all))
			}
			t.Logf("%d records, hits %v, %d false positives", len(all), col.Expected.L0Hits, falsePos)
		})
	}
}

// TestL0CompoundStats: a compound stats file "1" is the only one read; a
// target's stats files otherwise all count.
func TestL0CompoundStats(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteUniform, false)
	store, col := generate(t, cfg)
	ctx := context.Background()
	p := proto.Clone(col.L0Plan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(cfg.RootPath, p); err != nil {
		t.Fatal(err)
	}
	base, err := L0(ctx, store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	target := p.SegmentBinlogs[1] // first L1 target
	if len(base.Targets[target.SegmentID]) < 2 {
		t.Fatalf("target %d receives %d records, want several", target.SegmentID, len(base.Targets[target.SegmentID]))
	}
	only := base.Targets[target.SegmentID][0].PK.(int64)
	b, err := statslog.NewBuilder(gen.PKField, schemapb.DataType_Int64, 1)
	if err != nil {
		t.Fatal(err)
	}
	b.AddInt64(only)
	st, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	data, err := statslog.EncodeList([]*statslog.Stats{st})
	if err != nil {
		t.Fatal(err)
	}
	key := milvuspath.StatsLog(cfg.RootPath, cfg.CollectionID, cfg.PartitionID, target.SegmentID, gen.PKField, 1)
	put(t, store, key, data)
	fb := target.Field2StatslogPaths[0]
	fb.Binlogs = append(fb.Binlogs, &datapb.Binlog{LogPath: key, LogID: 1})
	res, err := L0(ctx, store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Targets[target.SegmentID] {
		if r.PK != only {
			t.Fatalf("with compound stats for pk %d only, pk %v was routed", only, r.PK)
		}
	}
	// The same single-pk stats as an extra ordinary file: the union applies.
	key2 := milvuspath.StatsLog(cfg.RootPath, cfg.CollectionID, cfg.PartitionID, target.SegmentID, gen.PKField, 2)
	single, _ := statslog.Encode(st)
	put(t, store, key2, single)
	fb.Binlogs[len(fb.Binlogs)-1] = &datapb.Binlog{LogPath: key2, LogID: 2}
	res, err = L0(ctx, store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffL0(base, res); d != "" {
		t.Fatalf("an extra stats file covering a routed pk changed routing:\n%s", d)
	}
	// Stats of another field are ignored: the target receives nothing.
	fb.FieldID = gen.VectorField
	res, err = L0(ctx, store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Targets[target.SegmentID]); n != 0 {
		t.Fatalf("target without pk stats received %d records", n)
	}
	// No target at all is an error.
	p.SegmentBinlogs = p.SegmentBinlogs[:1]
	if _, err := L0(ctx, store, cfg.RootPath, p); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Fatalf("L0 without targets: %v", err)
	}
}

// TestReadL0RoundTrip: written deltalogs read back equal; tampering shows in
// DiffL0; bad metadata is refused.
func TestReadL0RoundTrip(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			cfg := smallConfig(pk, gen.DeleteUniform, true)
			store, col := generate(t, cfg)
			ctx := context.Background()
			want, err := L0(ctx, store, cfg.RootPath, col.L0Plan)
			if err != nil {
				t.Fatal(err)
			}
			res := writeL0Result(t, store, cfg.RootPath, col.L0Plan, want)
			got, err := ReadL0(ctx, store, cfg.RootPath, col.L0Plan, res)
			if err != nil {
				t.Fatal(err)
			}
			if d := DiffL0(want, got); d != "" {
				t.Fatalf("round trip differs:\n%s", d)
			}

			first := want.Order[0]
			got.Targets[first] = got.Targets[first][1:]
			delete(got.Targets, want.Order[1])
			got.Targets[42] = []Delete{{PK: want.Targets[first][0].PK, TS: 1}}
			got.Order = append(got.Order, 42)
			d := DiffL0(want, got)
			w0, w1 := want.Targets[first][0], want.Targets[first][1]
			for _, s := range []string{
				"target segment " + itoa(first) + ": want " + itoa(int64(len(want.Targets[first]))) + " delete records, got " +
					itoa(int64(len(want.Targets[first])-1)),
				"record 0: want pk " + formatValue(w0.PK) + " ts " + formatValue(int64(w0.TS)) + ", got pk " + formatValue(w1.PK),
				"target segment " + itoa(want.Order[1]) + ": want " + itoa(int64(len(want.Targets[want.Order[1]]))) + " delete records, got none",
				"target segment 42: want no delete records, got 1",
			} {
				if !strings.Contains(d, s) {
					t.Errorf("diff does not contain %q:\n%s", s, d)
				}
			}

			bad := proto.Clone(res).(*datapb.CompactionPlanResult)
			bad.Segments[0].Deltalogs[0].Binlogs[0].EntriesNum++
			if _, err := ReadL0(ctx, store, cfg.RootPath, col.L0Plan, bad); err == nil || !strings.Contains(err.Error(), "entries_num") {
				t.Fatalf("wrong entries_num: %v", err)
			}
			bad = proto.Clone(res).(*datapb.CompactionPlanResult)
			bad.Segments[0].Deltalogs[0].Binlogs[0].TimestampTo++
			if _, err := ReadL0(ctx, store, cfg.RootPath, col.L0Plan, bad); err == nil || !strings.Contains(err.Error(), "timestamp_from/to") {
				t.Fatalf("wrong timestamp_to: %v", err)
			}
			bad = proto.Clone(res).(*datapb.CompactionPlanResult)
			bad.Segments[0].SegmentID = 3
			if _, err := ReadL0(ctx, store, cfg.RootPath, col.L0Plan, bad); err == nil || !strings.Contains(err.Error(), "not a segment of the plan") {
				t.Fatalf("foreign segment: %v", err)
			}
		})
	}
}
