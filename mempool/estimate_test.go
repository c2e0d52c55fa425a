package mempool

import (
	"math"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// log is one binlog: entries, log_size, memory_size.
type log struct{ entries, size, mem int64 }

func fieldBinlog(id int64, logs ...log) *datapb.FieldBinlog {
	fb := &datapb.FieldBinlog{FieldID: id}
	for i, l := range logs {
		fb.Binlogs = append(fb.Binlogs, &datapb.Binlog{LogID: int64(i + 1), EntriesNum: l.entries, LogSize: l.size, MemorySize: l.mem})
	}
	return fb
}

func dimParam(d string) []*commonpb.KeyValuePair {
	return []*commonpb.KeyValuePair{{Key: "dim", Value: d}}
}

// mixPlan: pk Int64 (100), FloatVector dim 128 (101), nullable VarChar (102);
// row ID and timestamp are not in the schema. Segment 1 has 6000+4000 rows
// and 300+200 deletes, segment 2 has 5000 rows and 500 deletes.
func mixPlan() *datapb.CompactionPlan {
	schema := &schemapb.CollectionSchema{Name: "docs", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", IsPrimaryKey: true, DataType: schemapb.DataType_Int64},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: dimParam("128")},
		{FieldID: 102, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true},
	}}
	seg1 := &datapb.CompactionSegmentBinlogs{SegmentID: 1, FieldBinlogs: []*datapb.FieldBinlog{
		fieldBinlog(0, log{6000, 30000, 0}, log{4000, 20000, 0}),
		fieldBinlog(1, log{6000, 40000, 0}, log{4000, 30000, 0}),
		fieldBinlog(100, log{6000, 20000, 48000}, log{4000, 15000, 32000}),
		fieldBinlog(101, log{6000, 3000000, 3072000}, log{4000, 2000000, 2048000}),
		fieldBinlog(102, log{6000, 120000, 0}, log{4000, 80000, 0}),
	}, Deltalogs: []*datapb.FieldBinlog{fieldBinlog(0, log{300, 5000, 0}, log{200, 4000, 0})}}
	seg2 := &datapb.CompactionSegmentBinlogs{SegmentID: 2, FieldBinlogs: []*datapb.FieldBinlog{
		fieldBinlog(0, log{5000, 25000, 0}),
		fieldBinlog(1, log{5000, 35000, 0}),
		fieldBinlog(100, log{5000, 18000, 40000}),
		fieldBinlog(101, log{5000, 2500000, 2560000}),
		fieldBinlog(102, log{5000, 100000, 0}),
	}, Deltalogs: []*datapb.FieldBinlog{fieldBinlog(0, log{500, 9000, 0})}}
	return &datapb.CompactionPlan{PlanID: 7, Schema: schema, SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{seg1, seg2}}
}

func mustEstimate(t *testing.T, plan *datapb.CompactionPlan, opts EstimateOptions) MemoryEstimate {
	t.Helper()
	e, err := Estimate(plan, opts)
	if err != nil {
		t.Fatalf("Estimate: %v", err)
	}
	return e
}

func TestEstimateMixPlanFormula(t *testing.T) {
	e := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20})
	// N = 15000, D = 1000, B = 1000.
	// W = 8 (row ID) + 8 (ts) + 8 (pk, memory_size) + 512 (vec, memory_size)
	//   + 300000/15000*3 + 4 = 64 (title, from log_size) + 1/8 (nullable) = 600.125
	// W_S = 8 + 8 = 16.
	want := MemoryEstimate{
		Rows: 15000, Deletes: 1000, BatchRows: 1000, RowBytes: 601, StrategyRowBytes: 16,
		GuestBase:      2<<20 + 4<<20,
		GuestData:      1000 * 16,
		GuestDecisions: 1000 * 8,
		GuestDeleteMap: 1000 * (8 + 8) * 2,
		// 6291456 + 2*(16000+8000+32000) = 6403456 -> 98 pages
		Strategy:        98 * 65536,
		HostReadBatches: 2 * 2 * 1000 * 600125 / 1000,
		HostHeldBatches: (2*2 + 1) * 1000 * 600125 / 1000,
		// per segment, the largest log of each column: seg 1 30000+40000+20000+3000000+120000;
		// two open inputs, each with the chunk decoding and one downloaded ahead
		HostObjectBuffers: 2 * 2 * 3210000,
		// C = N*W (below BinlogMaxSize) + two partly used batches
		HostOutputChunk:  15000*600125/1000 + 2*1000*600125/1000,
		HostOutputEncode: 3 * 15000 * 600125 / 1000,
		HostDeleteData:   1000 * 16,
	}
	live := want.HostReadBatches + want.HostHeldBatches + want.HostObjectBuffers + want.HostOutputChunk + want.HostOutputEncode + want.HostDeleteData
	factor := float64(DefaultHostHeapFactor) // computed at run time, as Estimate does
	want.HostHeadroom = int64(math.Ceil((factor - 1) * float64(live)))
	want.Host = live + want.HostHeadroom
	want.Total = want.Strategy + want.Host
	if e != want {
		t.Fatalf("estimate\n got %+v\nwant %+v", e, want)
	}
}

func TestEstimateOptionsChangeTheRightTerms(t *testing.T) {
	base := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20})

	retain := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20, RetainRows: true})
	if retain.GuestData != 15000*16 || retain.GuestDecisions != 15000*8 || retain.Host != base.Host {
		t.Fatalf("RetainRows: %+v", retain)
	}
	// 6291456 + 2*(240000+120000+32000) = 7075456 -> 108 pages
	if retain.Strategy != 108*65536 {
		t.Fatalf("RetainRows strategy = %d", retain.Strategy)
	}

	vec := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20, StrategyFields: []int64{100, 1, 101}})
	if vec.StrategyRowBytes != 528 || vec.GuestData != 528000 || vec.Host != base.Host {
		t.Fatalf("vector strategy field: %+v", vec)
	}

	one := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20, OpenInputs: 1, ReadAhead: 1, Prefetch: 2})
	if one.HostReadBatches != 600125 || one.HostHeldBatches != 2*600125 || one.HostObjectBuffers != 3*3210000 || one.Strategy != base.Strategy {
		t.Fatalf("one open input: %+v", one)
	}

	capped := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20, BinlogMaxSize: 1 << 20})
	if capped.HostOutputChunk != 1<<20+2*600125 || capped.HostOutputEncode != 3<<20 {
		t.Fatalf("output chunk not capped: %d, encode %d", capped.HostOutputChunk, capped.HostOutputEncode)
	}

	tight := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1000, GuestMinBytes: 2 << 20, EncodeFactor: 1, HostHeapFactor: 1})
	if tight.HostOutputEncode != base.HostOutputChunk-2*600125 || tight.HostHeadroom != 0 || tight.Strategy != base.Strategy {
		t.Fatalf("EncodeFactor 1, HostHeapFactor 1: %+v", tight)
	}

	// a batch never spans binlog chunks: the largest holds 6000 rows
	huge := mustEstimate(t, mixPlan(), EstimateOptions{BatchRows: 1 << 20, GuestMinBytes: 2 << 20})
	if huge.BatchRows != 6000 || huge.HostReadBatches != 2*2*6000*600125/1000 {
		t.Fatalf("batch rows above the largest chunk: %+v", huge)
	}

	def := mustEstimate(t, mixPlan(), EstimateOptions{})
	if def.BatchRows != 4096 || def.GuestBase != DefaultGuestMinBytes+DefaultGuestRuntimeBytes {
		t.Fatalf("defaults: %+v", def)
	}
	if def.Strategy%65536 != 0 || def.Strategy < 550*65536 {
		t.Fatalf("default strategy share %d is not a page multiple above the Go 1.26 minimum", def.Strategy)
	}
}

func TestEstimateVarCharPrimaryKeyDeletes(t *testing.T) {
	plan := &datapb.CompactionPlan{PlanID: 8,
		Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
			{FieldID: 100, Name: "id", IsPrimaryKey: true, DataType: schemapb.DataType_VarChar},
		}},
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{{SegmentID: 3,
			FieldBinlogs: []*datapb.FieldBinlog{fieldBinlog(100, log{1000, 9000, 40000})},
			// L0-style memory_size: (len 24 + 8) + 8 per record
			Deltalogs: []*datapb.FieldBinlog{fieldBinlog(0, log{100, 2000, 4000})},
		}}}
	e := mustEstimate(t, plan, EstimateOptions{BatchRows: 100, GuestMinBytes: 1 << 20})
	if e.GuestDeleteMap != 100*(16+24+8)*2 {
		t.Fatalf("GuestDeleteMap = %d", e.GuestDeleteMap)
	}
	if e.HostDeleteData != 100*(24+4+8) {
		t.Fatalf("HostDeleteData = %d", e.HostDeleteData)
	}
	// Without delete memory_size the key length comes from the pk column: 40 - 4.
	plan.SegmentBinlogs[0].Deltalogs[0].Binlogs[0].MemorySize = 0
	e = mustEstimate(t, plan, EstimateOptions{BatchRows: 100, GuestMinBytes: 1 << 20})
	if e.HostDeleteData != 100*(36+4+8) {
		t.Fatalf("HostDeleteData from pk width = %d", e.HostDeleteData)
	}
}

func TestEstimateSchemaWidthsWithoutMemorySize(t *testing.T) {
	plan := &datapb.CompactionPlan{
		Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
			{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
			{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
			{FieldID: 100, Name: "pk", IsPrimaryKey: true, DataType: schemapb.DataType_Int64},
			{FieldID: 101, Name: "f", DataType: schemapb.DataType_FloatVector, TypeParams: dimParam("4")},   // 16
			{FieldID: 102, Name: "h", DataType: schemapb.DataType_Float16Vector, TypeParams: dimParam("8")}, // 16
			{FieldID: 103, Name: "b", DataType: schemapb.DataType_BinaryVector, TypeParams: dimParam("9")},  // 2
			{FieldID: 104, Name: "i8", DataType: schemapb.DataType_Int8Vector, TypeParams: dimParam("3")},   // 3
			{FieldID: 105, Name: "ok", DataType: schemapb.DataType_Bool},                                    // 1
			{FieldID: 106, Name: "n", DataType: schemapb.DataType_Int32},                                    // 4
			{FieldID: 107, Name: "d", DataType: schemapb.DataType_Double},                                   // 8
			{FieldID: 108, Name: "meta", DataType: schemapb.DataType_JSON},                                  // 64+4, no binlogs
			{FieldID: 109, Name: "s", DataType: schemapb.DataType_Int16},                                    // 2
		}},
		TotalRows: 500,
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{{SegmentID: 4,
			FieldBinlogs: []*datapb.FieldBinlog{fieldBinlog(101, log{0, 0, 0})}}},
	}
	e := mustEstimate(t, plan, EstimateOptions{})
	if e.RowBytes != 8+8+8+16+16+2+3+1+4+8+68+2 {
		t.Fatalf("RowBytes = %d", e.RowBytes)
	}
	if e.Rows != 500 || e.BatchRows != 500 {
		t.Fatalf("rows from TotalRows: %+v", e)
	}
}

func TestEstimateErrors(t *testing.T) {
	if _, err := Estimate(nil, EstimateOptions{}); err == nil || !strings.Contains(err.Error(), "nil plan") {
		t.Fatalf("nil plan: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*datapb.CompactionPlan, *EstimateOptions)
		want   string
	}{
		{"no schema", func(p *datapb.CompactionPlan, _ *EstimateOptions) { p.Schema = nil }, "plan 7: plan has no schema"},
		{"no segments", func(p *datapb.CompactionPlan, _ *EstimateOptions) { p.SegmentBinlogs = nil }, "plan references no segments"},
		{"no pk", func(p *datapb.CompactionPlan, _ *EstimateOptions) { p.Schema.Fields[0].IsPrimaryKey = false }, `schema "docs" has no primary key`},
		{"two pks", func(p *datapb.CompactionPlan, _ *EstimateOptions) { p.Schema.Fields[1].IsPrimaryKey = true }, "two primary keys"},
		{"dup field", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.Schema.Fields = append(p.Schema.Fields, &schemapb.FieldSchema{FieldID: 101})
		}, "defines field 101 twice"},
		{"unknown field", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.SegmentBinlogs[1].FieldBinlogs = append(p.SegmentBinlogs[1].FieldBinlogs, fieldBinlog(555, log{1, 1, 1}))
		}, "segment 2: binlogs for field 555, which the schema does not define"},
		{"negative entries", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.SegmentBinlogs[0].FieldBinlogs[2].Binlogs[1].EntriesNum = -4
		}, "segment 1: field 100 log 2"},
		{"negative delete", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.SegmentBinlogs[1].Deltalogs[0].Binlogs[0].MemorySize = -1
		}, "segment 2: deltalog 0 log 1"},
		{"vector without dim", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.Schema.Fields[1].TypeParams = nil
			for _, s := range p.SegmentBinlogs {
				for _, b := range s.FieldBinlogs[3].Binlogs {
					b.MemorySize = 0
				}
			}
		}, "field 101 (vec) of type FloatVector has no dim and no memory_size"},
		{"bad dim", func(p *datapb.CompactionPlan, _ *EstimateOptions) {
			p.Schema.Fields[1].TypeParams = dimParam("-3")
			for _, s := range p.SegmentBinlogs {
				for _, b := range s.FieldBinlogs[3].Binlogs {
					b.MemorySize = 0
				}
			}
		}, `field 101 (vec) has bad dim "-3"`},
		{"unknown strategy field", func(_ *datapb.CompactionPlan, o *EstimateOptions) { o.StrategyFields = []int64{100, 999} }, "strategy field 999 is not in the schema"},
		{"negative option", func(_ *datapb.CompactionPlan, o *EstimateOptions) { o.BatchRows = -1 }, "negative estimate option"},
	}
	for _, c := range cases {
		plan := mixPlan()
		var opts EstimateOptions
		c.mutate(plan, &opts)
		_, err := Estimate(plan, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mempool: estimate plan 7") {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestEstimateHugeCountsSaturate(t *testing.T) {
	plan := mixPlan()
	plan.SegmentBinlogs[0].FieldBinlogs[2].Binlogs[0].EntriesNum = 1 << 62
	plan.SegmentBinlogs[1].FieldBinlogs[2].Binlogs[0].EntriesNum = 1 << 62
	plan.SegmentBinlogs[0].Deltalogs[0].Binlogs[0].EntriesNum = 1 << 62
	e := mustEstimate(t, plan, EstimateOptions{RetainRows: true})
	if e.Total <= 0 || e.Strategy <= 0 || e.Host <= 0 {
		t.Fatalf("overflowed: %+v", e)
	}
}

// TestEstimateStorageV2Objects: a v2 column group's file counts whole when
// the read stage downloads it (log_size up to DownloadLimit), and as
// InPlaceObjectBytes per column when it is read in place (larger, or of
// unknown size): one file per group for a whole segment, as Milvus's
// compactor writes, must not lease the segment's size.
func TestEstimateStorageV2Objects(t *testing.T) {
	v2Plan := func(vecLog int64) *datapb.CompactionPlan {
		p := mixPlan()
		p.SegmentBinlogs = p.SegmentBinlogs[:1]
		seg := p.SegmentBinlogs[0]
		seg.StorageVersion = 2
		system := fieldBinlog(0, log{10000, 90000, 160000})
		system.ChildFields = []int64{100, 0, 1}
		other := fieldBinlog(1, log{10000, 200000, 0})
		other.ChildFields = []int64{102}
		vec := fieldBinlog(101, log{10000, vecLog, 5120000})
		vec.ChildFields = []int64{101}
		seg.FieldBinlogs = []*datapb.FieldBinlog{system, other, vec}
		return p
	}
	objects := func(vecLog, limit int64) int64 {
		return mustEstimate(t, v2Plan(vecLog), EstimateOptions{DownloadLimit: limit}).HostObjectBuffers
	}
	// Prefetch 1: two chunks of the largest files per column group.
	if got, want := objects(5_000_000, 0), int64(2*(90000+200000+5_000_000)); got != want {
		t.Errorf("downloaded: HostObjectBuffers %d, want %d", got, want)
	}
	inPlace := int64(2 * (90000 + 200000 + InPlaceObjectBytes))
	if got := objects(900<<20, 0); got != inPlace {
		t.Errorf("900 MiB vector file: HostObjectBuffers %d, want %d (read in place)", got, inPlace)
	}
	if got := objects(0, 0); got != inPlace {
		t.Errorf("unknown size: HostObjectBuffers %d, want %d (read in place)", got, inPlace)
	}
	if got, want := objects(5_000_000, -1), int64(2*(3*InPlaceObjectBytes+InPlaceObjectBytes+InPlaceObjectBytes)); got != want {
		t.Errorf("DownloadLimit -1: HostObjectBuffers %d, want %d (every file in place)", got, want)
	}
	// A v1 segment's binlogs are always downloaded whole.
	p := v2Plan(900 << 20)
	p.SegmentBinlogs[0].StorageVersion = 0
	for _, fb := range p.SegmentBinlogs[0].FieldBinlogs {
		fb.ChildFields = nil
	}
	p.SegmentBinlogs[0].FieldBinlogs[1].FieldID = 102
	if got := mustEstimate(t, p, EstimateOptions{}).HostObjectBuffers; got < 2*(900<<20) {
		t.Errorf("v1: HostObjectBuffers %d, want the 900 MiB binlog counted twice", got)
	}
}
