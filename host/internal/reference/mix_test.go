package reference

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func smallConfig(pk schemapb.DataType, dist gen.DeleteDistribution, sorted bool) gen.Config {
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 3, 1200, 500, 8
	c.PKType, c.Deletes, c.Sorted = pk, dist, sorted
	c.L0Deletes = 400
	return c
}

func generate(t *testing.T, cfg gen.Config) (objstore.Store, *gen.Collection) {
	t.Helper()
	store := objstoretest.Local(t)
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store, col
}

// TestMixCountsMatchGenerator: over every pk type, delete distribution and
// sortedness, the reference's counters equal the generator's promise, every
// kept row is accounted for in the outputs, and merge order holds.
func TestMixCountsMatchGenerator(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		for _, dist := range []gen.DeleteDistribution{gen.DeleteUniform, gen.DeleteClustered} {
			for _, sorted := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/sorted=%v", pk, dist, sorted)
				t.Run(name, func(t *testing.T) {
					cfg := smallConfig(pk, dist, sorted)
					store, col := generate(t, cfg)
					res, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
					if err != nil {
						t.Fatal(err)
					}
					want := col.Expected
					got := res.Counts
					if got.Input != want.Rows || got.Deleted != want.Deleted || got.Expired != want.Expired || got.Kept != want.Kept {
						t.Fatalf("counts %+v, generator expects %+v", got, want)
					}
					if res.Sorted != sorted {
						t.Fatalf("Sorted = %v, want %v", res.Sorted, sorted)
					}
					if len(res.Outputs) != 1 || res.Placeholder {
						t.Fatalf("%d outputs (placeholder %v), want 1 under the default max_size", len(res.Outputs), res.Placeholder)
					}
					rows := res.Outputs[0].Rows
					if int64(len(rows)) != want.Kept {
						t.Fatalf("output holds %d rows, want %d", len(rows), want.Kept)
					}
					checkOrder(t, col, rows, sorted)
				})
			}
		}
	}
}

// checkOrder: merge-sorted output is non-decreasing in pk; unsorted output
// keeps plan order of inputs and row order within each input.
func checkOrder(t *testing.T, col *gen.Collection, rows []Row, sorted bool) {
	t.Helper()
	segIndex := map[int64]int{}
	for i, s := range col.MixPlan.SegmentBinlogs {
		segIndex[s.SegmentID] = i
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		if sorted {
			if comparePK(a.PK, b.PK) > 0 {
				t.Fatalf("rows %d and %d out of pk order: %v then %v", i-1, i, a.PK, b.PK)
			}
			continue
		}
		ia, ib := segIndex[a.Segment], segIndex[b.Segment]
		if ia > ib || (ia == ib && a.Offset >= b.Offset) {
			t.Fatalf("rows %d and %d out of input order: segment %d offset %d then segment %d offset %d",
				i-1, i, a.Segment, a.Offset, b.Segment, b.Offset)
		}
	}
}

// TestMixRotation: a tiny max_size gives one output per row, a huge one a
// single output, and in between every output is closed at the first row
// that brings it to max_size.
func TestMixRotation(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_VarChar, gen.DeleteUniform, true)
	store, col := generate(t, cfg)
	for _, tc := range []struct {
		name    string
		maxSize int64
	}{{"tiny", 1}, {"huge", 1 << 50}, {"medium", 20_000}} {
		t.Run(tc.name, func(t *testing.T) {
			col.MixPlan.MaxSize = tc.maxSize
			res, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
			if err != nil {
				t.Fatal(err)
			}
			kept := col.Expected.Kept
			switch tc.name {
			case "tiny":
				if int64(len(res.Outputs)) != kept {
					t.Fatalf("%d outputs for %d rows, want one per row", len(res.Outputs), kept)
				}
			case "huge":
				if len(res.Outputs) != 1 {
					t.Fatalf("%d outputs, want 1", len(res.Outputs))
				}
			case "medium":
				if len(res.Outputs) < 3 {
					t.Fatalf("%d outputs, want several", len(res.Outputs))
				}
			}
			var total int64
			for i, o := range res.Outputs {
				total += int64(len(o.Rows))
				var size, before int64
				for _, r := range o.Rows {
					n, err := RowSize(res.Fields, r.Values)
					if err != nil {
						t.Fatal(err)
					}
					before = size
					size += n
				}
				if size != o.Size {
					t.Fatalf("output %d: Size %d, rows sum to %d", i, o.Size, size)
				}
				if before >= tc.maxSize {
					t.Fatalf("output %d reached max_size %d before its last row (%d bytes)", i, tc.maxSize, before)
				}
				if i < len(res.Outputs)-1 && size < tc.maxSize {
					t.Fatalf("output %d closed at %d bytes, under max_size %d", i, size, tc.maxSize)
				}
			}
			if total != kept {
				t.Fatalf("outputs hold %d rows, want %d", total, kept)
			}
		})
	}
}

// TestRowSize pins the row-size definition on the generator's schema.
func TestRowSize(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_VarChar, gen.DeleteUniform, false)
	fields := gen.Schema(cfg).Fields // RowID, Timestamp, pk, embedding(8), category, price, title, in_stock, $meta
	row := []any{int64(1), int64(2), "pk000001000000", make([]byte, 32), int32(3), nil, nil, true, []byte(`{"a":1}`)}
	got, err := RowSize(fields, row)
	if err != nil {
		t.Fatal(err)
	}
	// 8 + 8 + (14+4) + 8*4 + 4 + 8 (null Double) + 4 (null VarChar) + 1 + (7+4)
	if want := int64(8 + 8 + 18 + 32 + 4 + 8 + 4 + 1 + 11); got != want {
		t.Fatalf("RowSize = %d, want %d", got, want)
	}
	row[6] = "héllo"
	got, _ = RowSize(fields, row)
	if want := int64(8 + 8 + 18 + 32 + 4 + 8 + (6 + 4) + 1 + 11); got != want {
		t.Fatalf("RowSize with a 6-byte title = %d, want %d", got, want)
	}
	if _, err := RowSize(fields, row[:3]); err == nil {
		t.Fatal("RowSize accepted 3 values for 9 fields")
	}
	bin := []*schemapb.FieldSchema{{FieldID: 100, DataType: schemapb.DataType_BinaryVector,
		TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "12"}}},
		{FieldID: 101, DataType: schemapb.DataType_Float16Vector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "3"}}},
		{FieldID: 102, DataType: schemapb.DataType_Int16}, {FieldID: 103, DataType: schemapb.DataType_Int8},
		{FieldID: 104, DataType: schemapb.DataType_Float}, {FieldID: 105, DataType: schemapb.DataType_Array}}
	got, err = RowSize(bin, []any{nil, nil, nil, nil, nil, []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 + 6 + 2 + 1 + 4 + 7); got != want {
		t.Fatalf("RowSize = %d, want %d", got, want)
	}
}

// TestMixEverythingExpired: no surviving row gives zero outputs and the
// placeholder, which a written placeholder result reads back as.
func TestMixEverythingExpired(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteUniform, true)
	cfg.DeleteFraction, cfg.ExpiredFraction = 0, 1
	store, col := generate(t, cfg)
	res, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 0 || !res.Placeholder || res.Counts.Expired != col.Expected.Rows || res.Counts.Kept != 0 {
		t.Fatalf("got %d outputs, placeholder %v, counts %+v; want nothing kept", len(res.Outputs), res.Placeholder, res.Counts)
	}
	back, err := ReadMix(context.Background(), store, cfg.RootPath, col.MixPlan, writeMixResult(t, store, cfg.RootPath, col.MixPlan, res))
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffMix(res, back); d != "" {
		t.Fatalf("placeholder result differs:\n%s", d)
	}
	if d := DiffMix(res, &MixResult{Fields: res.Fields, Counts: Counts{-1, -1, -1, 0}}); d != "placeholder segment: want true, got false" {
		t.Fatalf("missing placeholder: diff %q", d)
	}
}

// TestMixMergeConditions: merge-sort needs use_merge_sort, every input
// sorted, and 2 <= N <= max_segment_merge_sort; otherwise plan order.
func TestMixMergeConditions(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteClustered, true)
	store, col := generate(t, cfg)
	run := func(mutate func(p *datapb.CompactionPlan)) *MixResult {
		t.Helper()
		p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
		mutate(p)
		res, err := Mix(context.Background(), store, cfg.RootPath, p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, tc := range []struct {
		name   string
		mutate func(p *datapb.CompactionPlan)
		sorted bool
	}{
		{"default", func(*datapb.CompactionPlan) {}, true},
		{"no json_params", func(p *datapb.CompactionPlan) { p.JsonParams = "" }, true},
		{"use_merge_sort false", func(p *datapb.CompactionPlan) { p.JsonParams = `{"use_merge_sort":false}` }, false},
		{"use_merge_sort string", func(p *datapb.CompactionPlan) { p.JsonParams = `{"use_merge_sort":"false"}` }, false},
		{"limit 2 < 3 inputs", func(p *datapb.CompactionPlan) { p.JsonParams = `{"max_segment_merge_sort":2}` }, false},
		{"limit 3", func(p *datapb.CompactionPlan) { p.JsonParams = `{"max_segment_merge_sort":"3"}` }, true},
		{"one input", func(p *datapb.CompactionPlan) { p.SegmentBinlogs = p.SegmentBinlogs[:1] }, false},
		{"one unsorted input", func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].IsSorted = false }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(tc.mutate)
			if res.Sorted != tc.sorted {
				t.Fatalf("Sorted = %v, want %v", res.Sorted, tc.sorted)
			}
			if len(res.Outputs) == 1 {
				checkOrder(t, col, res.Outputs[0].Rows, tc.sorted)
			}
		})
	}
	p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	p.JsonParams = `{"use_merge_sort":1}`
	if _, err := Mix(context.Background(), store, cfg.RootPath, p); err == nil || !strings.Contains(err.Error(), "use_merge_sort") {
		t.Fatalf("bad use_merge_sort: err %v", err)
	}
}

// TestMixMergeTies: equal pks come from the lower input index first.
func TestMixMergeTies(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_VarChar, gen.DeleteUniform, true)
	cfg.Segments, cfg.RowsPerSegment = 2, 300
	store, col := generate(t, cfg)
	p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(cfg.RootPath, p); err != nil {
		t.Fatal(err)
	}
	twin := proto.Clone(p.SegmentBinlogs[0]).(*datapb.CompactionSegmentBinlogs)
	twin.SegmentID = 7
	p.SegmentBinlogs = []*datapb.CompactionSegmentBinlogs{twin, p.SegmentBinlogs[0], p.SegmentBinlogs[1]}
	res, err := Mix(context.Background(), store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	rows := res.Outputs[0].Rows
	ties, twins := 0, 0
	for _, r := range rows {
		if r.Segment == 7 {
			twins++
		}
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].PK == rows[i-1].PK {
			ties++
		}
		if rows[i].PK == rows[i-1].PK && (rows[i-1].Segment != 7 || rows[i].Segment == 7) {
			t.Fatalf("rows %d, %d: equal pk %v from segments %d then %d; the twin (input 0) must come first",
				i-1, i, rows[i].PK, rows[i-1].Segment, rows[i].Segment)
		}
	}
	if ties != twins || twins == 0 {
		t.Fatalf("%d ties among %d rows, want one per row of the twin", ties, len(rows))
	}
	if int64(len(rows)) != res.Counts.Kept || res.Counts.Input != 3*300 {
		t.Fatalf("counts %+v with %d rows", res.Counts, len(rows))
	}
}

// TestMixStorageVersions: the same generated rows stored as storage v1, v2
// and a mix of both give the same expected result, row for row.
func TestMixStorageVersions(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			var want *MixResult
			for _, v := range []struct {
				name    string
				version int64
				mixed   bool
			}{{"v1", 0, false}, {"v2", 2, false}, {"mixed", 2, true}} {
				cfg := smallConfig(pk, gen.DeleteUniform, false)
				cfg.StorageVersion, cfg.MixedVersions = v.version, v.mixed
				store, col := generate(t, cfg)
				res, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
				if err != nil {
					t.Fatalf("%s: %v", v.name, err)
				}
				if res.Counts.Kept != col.Expected.Kept || res.Counts.Input != col.Expected.Rows {
					t.Fatalf("%s: counts %+v, generator expects %+v", v.name, res.Counts, col.Expected)
				}
				if want == nil {
					want = res
					continue
				}
				if d := DiffMix(want, res); d != "" {
					t.Fatalf("%s differs from v1:\n%s", v.name, d)
				}
			}
		})
	}
}
