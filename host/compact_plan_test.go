package host

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestCompactDeterministic: the same plan compacted into two stores holding
// the same collection writes identical bytes under identical keys, through
// wasm and natively linked strategies alike; the registry finds the
// strategies by plan type.
func TestCompactDeterministic(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	dir := t.TempDir()
	writePlugin(t, dir, "mix@1.0.0.wasm", mixWasm(t))
	writePlugin(t, dir, "l0@1.0.0.wasm", l0Wasm(t))
	reg := NewRegistry(rt, DirSource(dir), RegistryConfig{})
	defer reg.Close()
	mustPoll(t, reg)

	cfg := smallGen(7)
	cfg.Sorted, cfg.PKType = true, schemapb.DataType_VarChar
	run := func(native bool) map[string][]byte {
		store := objstoretest.Local(t)
		col := generate(t, store, cfg)
		manyOutputs(t, col.MixPlan)
		h := newTestHost(t, store, 0, func(o *Options) { o.Plugins = reg })
		var mixOpt, l0Opt []CompactOption
		if native {
			mixOpt, l0Opt = []CompactOption{Native(mixstrategy.New())}, []CompactOption{Native(l0strategy.New())}
		}
		if _, err := h.Compact(ctx, col.MixPlan, mixOpt...); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Compact(ctx, col.L0Plan, l0Opt...); err != nil {
			t.Fatal(err)
		}
		return snapshot(t, store)
	}
	a, b, c := run(false), run(false), run(true)
	if d := diffSnapshots(a, b); len(d) > 0 {
		t.Fatalf("two wasm runs differ: %v", d)
	}
	if d := diffSnapshots(a, c); len(d) > 0 {
		t.Fatalf("wasm and native runs differ: %v", d)
	}
	outputs := 0
	for k := range a {
		if strings.Contains(k, "/450000000100") || strings.Contains(k, "/450000000250") {
			outputs++
		}
	}
	if outputs < 20 {
		t.Fatalf("only %d output objects; the test wants many", outputs)
	}
}

// TestValidatePlan: plans Milvus's DataNode refuses are refused before any
// work, with errors naming the plan and the problem.
func TestValidatePlan(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(8))
	h := newTestHost(t, store, 0, nil)
	for _, c := range []struct {
		name string
		mod  func(p *datapb.CompactionPlan)
		l0   bool
		want string
	}{
		{"no segments", func(p *datapb.CompactionPlan) { p.SegmentBinlogs = nil }, false, "no segments"},
		{"begin log id", func(p *datapb.CompactionPlan) { p.BeginLogID = 0 }, false, "begin_logID is 0"},
		{"log ids", func(p *datapb.CompactionPlan) { p.PreAllocatedLogIDs.End = 0 }, false, "pre_allocated_logIDs"},
		{"segment ids", func(p *datapb.CompactionPlan) { p.PreAllocatedSegmentIDs = nil }, false, "pre_allocated_segmentIDs"},
		{"max size", func(p *datapb.CompactionPlan) { p.MaxSize = 0 }, false, "max_size is 0"},
		{"schema", func(p *datapb.CompactionPlan) { p.Schema = nil }, false, "no schema"},
		{"pk type", func(p *datapb.CompactionPlan) { p.Schema.Fields[2].DataType = schemapb.DataType_Float }, false, "want Int64 or VarChar"},
		{"two pks", func(p *datapb.CompactionPlan) { p.Schema.Fields[4].IsPrimaryKey = true }, false, "two primary keys"},
		{"storage v3 output", func(p *datapb.CompactionPlan) { p.JsonParams = `{"storage_version":3}` }, false, "storage_version 3 is not supported"},
		{"storage v3 input", func(p *datapb.CompactionPlan) { p.SegmentBinlogs[1].StorageVersion = 3 }, false, "has storage_version 3"},
		{"bad params", func(p *datapb.CompactionPlan) { p.JsonParams = `{` }, false, "json_params"},
		{"type", func(p *datapb.CompactionPlan) { p.Type = datapb.CompactionType_ClusteringCompaction }, false, "not supported"},
		{"no targets", func(p *datapb.CompactionPlan) { p.SegmentBinlogs = p.SegmentBinlogs[:1] }, true, "without target"},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := proto.Clone(col.MixPlan).(*datapb.CompactionPlan)
			if c.l0 {
				plan = proto.Clone(col.L0Plan).(*datapb.CompactionPlan)
			}
			c.mod(plan)
			_, err := h.Compact(ctx, plan, Native(mixstrategy.New()))
			var ce *CompactError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidPlan) || ce.Stage != "validate" {
				t.Fatalf("error %v, want a validate-stage ErrInvalidPlan", err)
			}
			if !strings.Contains(err.Error(), "plan 45000000000000000") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the plan and %q", err, c.want)
			}
		})
	}
	if _, err := h.Compact(ctx, col.MixPlan, Native(l0strategy.New())); err == nil || !strings.Contains(err.Error(), "does not handle mix") {
		t.Fatalf("l0 strategy on a mix plan: %v", err)
	}
	if _, err := h.Compact(ctx, col.MixPlan); err == nil || !strings.Contains(err.Error(), "no strategy") {
		t.Fatalf("no strategy configured: %v", err)
	}
}

// TestCompactPoolTooSmall: a plan that can never fit the pool fails at
// once, naming both numbers.
func TestCompactPoolTooSmall(t *testing.T) {
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(9))
	h := newTestHost(t, store, 1<<20, nil)
	_, err := h.Compact(context.Background(), col.MixPlan, Native(mixstrategy.New()))
	var ce *CompactError
	if !errors.As(err, &ce) || ce.Stage != "memory" || !errors.Is(err, mempool.ErrTooLarge) || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("error %v, want a memory-stage ErrTooLarge naming the pool total", err)
	}
}

// TestDecodePlan: protojson and binary protobuf decode to the same plan;
// garbage is an error.
func TestDecodePlan(t *testing.T) {
	plan := gen.DefaultConfig()
	col := generate(t, objstoretest.Local(t), func() gen.Config { c := plan; c.Segments, c.RowsPerSegment, c.Dim = 1, 10, 4; return c }())
	bin, err := proto.Marshal(col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(col.MixPlan)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{bin, js, append([]byte("\n  "), js...)} {
		got, err := DecodePlan(in)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, col.MixPlan) {
			t.Fatalf("decoded plan differs from the original")
		}
	}
	for _, in := range []string{"", "  ", "{not json", "\xff\xff\xff"} {
		if _, err := DecodePlan([]byte(in)); err == nil || !strings.Contains(err.Error(), "decode plan") {
			t.Fatalf("DecodePlan(%q) = %v, want an error", in, err)
		}
	}
}

// TestCompactFieldOptions: per-field writer options reach the output
// binlogs (an uncompressed vector field stores more bytes) without changing
// any row.
func TestCompactFieldOptions(t *testing.T) {
	ctx := context.Background()
	vecBytes := func(fo map[int64]binlog.WriterOptions) int64 {
		store := objstoretest.Local(t)
		cfg := smallGen(13)
		cfg.Dim = 64
		col := generate(t, store, cfg)
		var pr progressRecorder
		h := newTestHost(t, store, 0, func(o *Options) { o.FieldOptions, o.Progress = fo, pr.record })
		res, err := h.Compact(ctx, col.MixPlan, Native(mixstrategy.New()))
		if err != nil {
			t.Fatal(err)
		}
		checkMix(t, store, col.MixPlan, res, pr.final())
		var n int64
		for _, s := range res.GetSegments() {
			for _, fb := range s.GetInsertLogs() {
				if fb.GetFieldID() == gen.VectorField {
					for _, b := range fb.GetBinlogs() {
						n += b.GetLogSize()
					}
				}
			}
		}
		return n
	}
	raw := compress.Codecs.Uncompressed
	zstd, plain := vecBytes(nil), vecBytes(map[int64]binlog.WriterOptions{gen.VectorField: {Compression: &raw}})
	if plain <= zstd {
		t.Fatalf("uncompressed vectors take %d bytes, ZSTD %d: the option did not apply", plain, zstd)
	}
}

// TestDecodePlanManifestPath: a storage-v3 manifest path, a field this
// build's protobuf does not know, is refused wherever it appears in a JSON
// plan; other unknown fields and an empty manifest path are ignored.
func TestDecodePlanManifestPath(t *testing.T) {
	for in, want := range map[string]string{
		`{"planID":"5","segmentBinlogs":[{"segmentID":"10"},{"segmentID":"11","manifestPath":"files/m/11/3"}]}`: "plan.segmentBinlogs[1].manifestPath is set",
		`{"planID":"5","manifest_path":"x"}`:                      "plan.manifest_path is set",
		`{"planID":"5","extra":{"deep":[{"manifestPath":7}]}}`:    "plan.extra.deep[0].manifestPath is set",
		`{"planID":"5","segmentBinlogs":[{"manifestPath":""}]}`:   "",
		`{"planID":"5","segmentBinlogs":[{"manifestPath":null}]}`: "",
		`{"planID":"5","newerField":{"manifest":"not the key"}}`:  "",
	} {
		plan, err := DecodePlan([]byte(in))
		if want == "" {
			if err != nil || plan.GetPlanID() != 5 {
				t.Errorf("DecodePlan(%s) = %v, %v; want plan 5", in, plan, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPlan) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "plan 5") {
			t.Errorf("DecodePlan(%s) = %v; want ErrInvalidPlan naming plan 5 and %q", in, err, want)
		}
	}
}
