package host

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/pipeline"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// randomCase is one randomized plan: a generated collection plus the
// host's batch size and the plan's chunk size.
type randomCase struct {
	cfg           gen.Config
	batchRows     int
	binlogMaxSize int64
	outVersion    int64 // Options.OutputStorageVersion
}

// wantVersion is the storage version the case's outputs must have.
func (c randomCase) wantVersion(plan *datapb.CompactionPlan) int64 {
	v := c.outVersion
	if v == StorageFromPlan {
		if p, err := pipeline.ParseParams(plan.GetJsonParams()); err == nil {
			v = p.StorageVersion
		}
	}
	if v == StorageV2 {
		return StorageV2
	}
	return 0
}

func (c randomCase) String() string {
	return fmt.Sprintf("seed=%d pk=%s segs=%d rows=%d chunk=%d sorted=%v del=%.2f/%s ttl=%v exp=%.2f maxsize=%d batch=%d binlogmax=%d in=v%d mixed=%v out=%d",
		c.cfg.Seed, c.cfg.PKType, c.cfg.Segments, c.cfg.RowsPerSegment, c.cfg.ChunkRows, c.cfg.Sorted,
		c.cfg.DeleteFraction, c.cfg.Deletes, c.cfg.TTL, c.cfg.ExpiredFraction, c.cfg.MaxSegmentSize, c.batchRows, c.binlogMaxSize,
		c.cfg.StorageVersion, c.cfg.MixedVersions, c.outVersion)
}

// randomCaseFor draws a case from seed: pk type, segment count and sizes,
// chunking, sortedness, delete fraction and distribution, TTL fraction,
// tiny to huge max sizes, batch and chunk sizes, input storage versions
// (v1, v2 or mixed) and the output version (the plan's, or forced).
func randomCaseFor(seed int64) randomCase {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	c := gen.DefaultConfig()
	c.Seed = seed
	c.CollectionID = 449000000000000001 + seed // distinct keys per case in one store
	c.Dim = []int{4, 8, 32}[r.IntN(3)]
	c.Segments = 1 + r.IntN(4)
	c.RowsPerSegment = 1 + r.IntN(1500)
	if r.IntN(2) == 0 {
		c.ChunkRows = 1 + r.IntN(c.RowsPerSegment)
	}
	if r.IntN(2) == 0 {
		c.PKType = schemapb.DataType_VarChar
	}
	c.Sorted = r.IntN(3) > 0
	c.DynamicField = r.IntN(2) == 0
	c.DeleteFraction = []float64{0, 0.05, 0.3, 0.9, 1}[r.IntN(5)]
	c.Deletes = gen.DeleteDistribution(r.IntN(2))
	if r.IntN(4) == 0 {
		c.TTL, c.ExpiredFraction = 0, 0
	} else {
		c.ExpiredFraction = []float64{0, 0.1, 0.5}[r.IntN(3)]
	}
	c.MaxSegmentSize = []int64{1, 500, 20_000, 200_000, 1 << 40}[r.IntN(5)]
	if c.MaxSegmentSize < 20_000 {
		c.RowsPerSegment = min(c.RowsPerSegment, 120) // one output per few rows: keep the object count small
	}
	c.L0Segments, c.L0Deletes = 1+r.IntN(2), r.IntN(300)
	rc := randomCase{cfg: c, batchRows: []int{1, 7, 100, 1000, 8192}[r.IntN(5)],
		binlogMaxSize: []int64{4 << 10, 64 << 10, 64 << 20}[r.IntN(3)]}
	switch r.IntN(3) {
	case 1:
		rc.cfg.StorageVersion = 2
	case 2:
		rc.cfg.StorageVersion, rc.cfg.MixedVersions = 2, true
	}
	rc.outVersion = []int64{StorageFromPlan, StorageFromPlan, StorageV1, StorageV2}[r.IntN(4)]
	return rc
}

// setBinlogMaxSize rewrites the plan's json_params binlog_max_size.
func setBinlogMaxSize(t testing.TB, params string, size int64) string {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(params), &m); err != nil {
		t.Fatal(err)
	}
	m["binlog_max_size"] = size
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCompactRandomized runs randomized mix and L0 plans through the wasm
// builds of plugins/mix and plugins/l0 on the local store and on MinIO and
// compares every output row, and every routed delete, with the reference.
func TestCompactRandomized(t *testing.T) {
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		n := 16
		switch {
		case testing.Short():
			n = 4
		case raceEnabled:
			n = 8
		}
		if _, ok := store.(*objstore.S3); ok {
			n /= 2
		}
		for seed := range int64(n) {
			rc := randomCaseFor(seed + 1)
			t.Run(fmt.Sprint(seed+1), func(t *testing.T) {
				t.Log(rc)
				runRandomCase(t, store, plugins, rc)
			})
		}
	})
}

func runRandomCase(t *testing.T, store objstore.Store, plugins testPlugins, rc randomCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	col := generate(t, store, rc.cfg)
	plan := col.MixPlan
	plan.JsonParams = setBinlogMaxSize(t, plan.JsonParams, rc.binlogMaxSize)
	var pr progressRecorder
	h := newTestHost(t, store, 0, func(o *Options) {
		o.Progress, o.BatchRows, o.OutputStorageVersion = pr.record, rc.batchRows, rc.outVersion
	})
	res, err := h.Compact(ctx, plan, WithPlugin(plugins.mix))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.GetSegments() {
		if want := rc.wantVersion(plan); s.GetStorageVersion() != want {
			t.Fatalf("output segment %d has storage_version %d, want %d", s.GetSegmentID(), s.GetStorageVersion(), want)
		}
	}
	checkMix(t, store, plan, res, pr.final())
	if got := pr.final(); got.RowsRead != col.Expected.Rows || got.Deleted != col.Expected.Deleted || got.Expired != col.Expected.Expired || got.RowsWritten != col.Expected.Kept {
		t.Fatalf("final progress %+v, generator expects %+v", got, col.Expected)
	}
	if col.L0Plan != nil {
		res, err := h.Compact(ctx, col.L0Plan, WithPlugin(plugins.l0))
		if err != nil {
			t.Fatal(err)
		}
		checkL0(t, store, col.L0Plan, res)
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d after the tasks, want 0", u)
	}
}
