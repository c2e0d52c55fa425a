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
)

// TestReadMixRoundTrip: a result written from the reference reads back
// equal (every field, nulls included), for both pk types and several outputs.
func TestReadMixRoundTrip(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			cfg := smallConfig(pk, gen.DeleteClustered, pk == schemapb.DataType_Int64)
			store, col := generate(t, cfg)
			col.MixPlan.MaxSize = 50_000
			want, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Outputs) < 2 {
				t.Fatalf("want several outputs, got %d", len(want.Outputs))
			}
			res := writeMixResult(t, store, cfg.RootPath, col.MixPlan, want)
			got, err := ReadMix(context.Background(), store, cfg.RootPath, col.MixPlan, res)
			if err != nil {
				t.Fatal(err)
			}
			if d := DiffMix(want, got); d != "" {
				t.Fatalf("round trip differs:\n%s", d)
			}
			if got.Counts.Kept != want.Counts.Kept || got.Counts.Deleted != -1 || got.Outputs[1].SegmentID != outSegBase+1 {
				t.Fatalf("readback counts %+v, second segment %d", got.Counts, got.Outputs[1].SegmentID)
			}
			nulls := 0
			for _, o := range got.Outputs {
				for _, r := range o.Rows {
					if r.Values[6] == nil { // title, nullable
						nulls++
					}
				}
			}
			if nulls == 0 {
				t.Fatal("no null title read back")
			}
		})
	}
}

// TestReadMixChecks: ReadMix refuses results that break Milvus's rules.
func TestReadMixChecks(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteUniform, false)
	cfg.Segments, cfg.RowsPerSegment = 2, 400
	store, col := generate(t, cfg)
	col.MixPlan.MaxSize = 20_000
	want, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	good := writeMixResult(t, store, cfg.RootPath, col.MixPlan, want)
	for _, tc := range []struct {
		name   string
		mutate func(r *datapb.CompactionPlanResult)
		want   string
	}{
		{"row count", func(r *datapb.CompactionPlanResult) { r.Segments[0].NumOfRows++ }, "entries_num"},
		{"missing field", func(r *datapb.CompactionPlanResult) { r.Segments[0].InsertLogs = r.Segments[0].InsertLogs[1:] },
			"no insert log for field 0"},
		{"no stats", func(r *datapb.CompactionPlanResult) { r.Segments[1].Field2StatslogPaths = nil }, "no pk stats log"},
		{"wrong stats", func(r *datapb.CompactionPlanResult) {
			r.Segments[0].Field2StatslogPaths = r.Segments[1].Field2StatslogPaths
		}, "reject"},
		{"mixed is_sorted", func(r *datapb.CompactionPlanResult) { r.Segments[1].IsSorted = true }, "is_sorted"},
		{"stray placeholder", func(r *datapb.CompactionPlanResult) {
			r.Segments = append(r.Segments, &datapb.CompactionSegment{SegmentID: 5})
		}, "empty placeholder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proto.Clone(good).(*datapb.CompactionPlanResult)
			tc.mutate(r)
			_, err := ReadMix(context.Background(), store, cfg.RootPath, col.MixPlan, r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// Compressed insert log paths (log_path empty, logID set) are rebuilt.
	r := proto.Clone(good).(*datapb.CompactionPlanResult)
	for _, s := range r.Segments {
		for _, fb := range s.InsertLogs {
			for _, b := range fb.Binlogs {
				b.LogPath = ""
			}
		}
	}
	got, err := ReadMix(context.Background(), store, cfg.RootPath, col.MixPlan, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffMix(want, got); d != "" {
		t.Fatalf("compressed paths: %s", d)
	}
}

// TestDiffMix: the description names the output, row, field and values.
func TestDiffMix(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_VarChar, gen.DeleteUniform, false)
	cfg.Segments, cfg.RowsPerSegment = 2, 300
	store, col := generate(t, cfg)
	col.MixPlan.MaxSize = 10_000
	want, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffMix(want, cloneMix(want)); d != "" {
		t.Fatalf("a copy differs: %s", d)
	}
	w := want.Outputs[1].Rows[2]

	got := cloneMix(want)
	got.Outputs[1].Rows[2].Values[5] = nil               // price
	got.Outputs[1].Rows[2].Values[4] = int64(7)          // category: wrong type
	got.Outputs[1].Rows[2].Values[3] = []byte{1, 2, 3}   // embedding
	got.Outputs[1].Rows[2].Values[8] = []byte(`{"x":1}`) // $meta
	got.Counts.Deleted++
	d := DiffMix(want, got)
	t.Log(d)
	for _, s := range []string{
		"deleted rows: want " + itoa(want.Counts.Deleted) + ", got " + itoa(want.Counts.Deleted+1),
		"output 1 (segment 0) row 2 (want pk \"" + w.PK.(string) + "\"",
		"field 103 (price) want " + formatValue(w.Values[5]) + ", got null",
		"field 102 (category) want int32 " + formatValue(w.Values[4]) + ", got int64 7",
		"field 101 (embedding) want 32 bytes ",
		"got 3 bytes 010203",
		`field 106 ($meta) want "{\"color\"`,
		`got "{\"x\":1}"`,
	} {
		if !strings.Contains(d, s) {
			t.Errorf("diff does not contain %q:\n%s", s, d)
		}
	}

	// Same rows, different split.
	got = cloneMix(want)
	last := got.Outputs[0].Rows[len(got.Outputs[0].Rows)-1]
	got.Outputs[0].Rows = got.Outputs[0].Rows[:len(got.Outputs[0].Rows)-1]
	got.Outputs[1].Rows = append([]Row{last}, got.Outputs[1].Rows...)
	d = DiffMix(want, got)
	if !strings.Contains(d, "output 0 (segment 0): want ") || !strings.Contains(d, "only the split into outputs differs") {
		t.Fatalf("split diff:\n%s", d)
	}

	// Missing output.
	got = cloneMix(want)
	got.Outputs = got.Outputs[:len(got.Outputs)-1]
	if d := DiffMix(want, got); !strings.HasPrefix(d, "outputs: want "+itoa(int64(len(want.Outputs)))) {
		t.Fatalf("missing output diff:\n%s", d)
	}

	// Many differences are capped.
	got = cloneMix(want)
	for _, o := range got.Outputs {
		o.Rows[0].TS++
	}
	if d := DiffMix(want, got); len(want.Outputs) > maxDiffLines && !strings.Contains(d, "more differences") {
		t.Fatalf("uncapped diff:\n%s", d)
	}
}

func itoa(n int64) string { return formatValue(n) }

// TestMixMissingChunks: a field with fewer chunks is aligned to the end, its
// leading rows filled with nulls (nullable) or its default value; a field
// with no binlogs is filled entirely; a non-nullable field without data is
// an error.
func TestMixMissingChunks(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteUniform, false)
	cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.DeleteFraction, cfg.ExpiredFraction = 1, 1200, 500, 0, 0
	store, col := generate(t, cfg)
	full, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(cfg.RootPath, p); err != nil {
		t.Fatal(err)
	}
	fb := func(id int64) *datapb.FieldBinlog {
		for _, f := range p.SegmentBinlogs[0].FieldBinlogs {
			if f.FieldID == id {
				return f
			}
		}
		t.Fatalf("no field %d", id)
		return nil
	}
	price, title := fb(gen.PriceField), fb(gen.TitleField)
	price.Binlogs = price.Binlogs[1:] // drop chunk 0 of price
	title.Binlogs = nil               // title added later
	p.Schema.Fields[6].DefaultValue = &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: "n/a"}}
	res, err := Mix(context.Background(), store, cfg.RootPath, p)
	if err != nil {
		t.Fatal(err)
	}
	rows, wantRows := res.Outputs[0].Rows, full.Outputs[0].Rows
	for r := range rows {
		wantPrice := wantRows[r].Values[5]
		if r < 500 {
			wantPrice = nil
		}
		if !valueEqual(rows[r].Values[5], wantPrice) || rows[r].Values[6] != "n/a" || rows[r].Values[2] != wantRows[r].Values[2] {
			t.Fatalf("row %d: price %v title %v pk %v; want price %v, title n/a, pk %v", r,
				rows[r].Values[5], rows[r].Values[6], rows[r].Values[2], wantPrice, wantRows[r].Values[2])
		}
	}
	fb(gen.CategoryField).Binlogs = nil
	if _, err := Mix(context.Background(), store, cfg.RootPath, p); err == nil ||
		!strings.Contains(err.Error(), "field 102 (category) has no binlog here and is neither nullable nor has a default value") {
		t.Fatalf("missing non-nullable field: err %v", err)
	}
}

// TestMixErrors: bad plans and missing objects are errors naming the cause.
func TestMixErrors(t *testing.T) {
	cfg := smallConfig(schemapb.DataType_Int64, gen.DeleteUniform, false)
	cfg.Segments, cfg.RowsPerSegment = 2, 100
	store, col := generate(t, cfg)
	ctx := context.Background()
	if _, err := Mix(ctx, store, cfg.RootPath, nil); err == nil {
		t.Fatal("nil plan accepted")
	}
	p := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	p.MaxSize = 0
	if _, err := Mix(ctx, store, cfg.RootPath, p); err == nil || !strings.Contains(err.Error(), "max_size is 0") {
		t.Fatalf("max_size 0: %v", err)
	}
	p = proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	for _, s := range p.SegmentBinlogs {
		for _, fb := range s.FieldBinlogs {
			fb.Binlogs = nil
		}
	}
	if _, err := Mix(ctx, store, cfg.RootPath, p); err == nil || !strings.Contains(err.Error(), "no input segment has insert binlogs") {
		t.Fatalf("inputs without binlogs: %v", err)
	}
	p = proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
	if err := milvuspath.FillPlan(cfg.RootPath, p); err != nil {
		t.Fatal(err)
	}
	key := p.SegmentBinlogs[1].Deltalogs[0].Binlogs[0].LogPath
	if err := store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := Mix(ctx, store, cfg.RootPath, col.MixPlan); err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("missing deltalog: err %v, want it to name %s", err, key)
	}
	if col.MixPlan.SegmentBinlogs[0].FieldBinlogs[0].Binlogs[0].LogPath != "" {
		t.Fatal("Mix modified the caller's plan")
	}
}
