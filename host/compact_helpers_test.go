package host

import (
	"bytes"
	"context"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/reference"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// mixWasm and l0Wasm build the bundled strategies for wasip1 once.
func mixWasm(t testing.TB) []byte { return buildWasm(t, "../plugins/mix") }
func l0Wasm(t testing.TB) []byte  { return buildWasm(t, "../plugins/l0") }

// sharedRT is one runtime for the pipeline tests (compiled code is cached
// in testCacheDir across tests).
var (
	sharedRTOnce sync.Once
	sharedRT     *Runtime
	sharedRTErr  error
)

func pipelineRuntime(t testing.TB) *Runtime {
	t.Helper()
	sharedRTOnce.Do(func() {
		sharedRT, sharedRTErr = NewRuntime(context.Background(), Config{CacheDir: testCacheDir})
	})
	if sharedRTErr != nil {
		t.Fatal(sharedRTErr)
	}
	return sharedRT
}

// testPlugins admits the bundled mix and l0 wasm builds.
type testPlugins struct{ mix, l0 *Plugin }

func bundledPlugins(t testing.TB, rt *Runtime) testPlugins {
	t.Helper()
	return testPlugins{mix: admit(t, rt, "mix@1.0.0", mixWasm(t)), l0: admit(t, rt, "l0@1.0.0", l0Wasm(t))}
}

// newTestHost returns a Host on store with a pool of poolBytes (0 = 1 GiB).
func newTestHost(t testing.TB, store objstore.Store, poolBytes int64, mod func(*Options)) *Host {
	t.Helper()
	if poolBytes == 0 {
		poolBytes = 1 << 30
	}
	pool, err := mempool.NewPool(poolBytes)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: store, Runtime: pipelineRuntime(t), Pool: pool, BatchRows: 1000}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func generate(t testing.TB, store objstore.Store, cfg gen.Config) *gen.Collection {
	t.Helper()
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return col
}

// smallGen is a small collection: 3 segments of 1500 rows in 500-row
// chunks, 8-dim vectors.
func smallGen(seed int64) gen.Config {
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 3, 1500, 500, 8
	c.L0Deletes, c.Seed = 300, seed
	return c
}

// checkMix compares a produced mix result with the reference row by row.
func checkMix(t testing.TB, store objstore.Store, plan *datapb.CompactionPlan, res *datapb.CompactionPlanResult, final Progress) {
	t.Helper()
	ctx := context.Background()
	want, err := reference.Mix(ctx, store, DefaultRootPath, plan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reference.ReadMix(ctx, store, DefaultRootPath, plan, res)
	if err != nil {
		t.Fatal(err)
	}
	got.Counts.Input, got.Counts.Deleted, got.Counts.Expired = final.RowsRead, final.Deleted, final.Expired
	if d := reference.DiffMix(want, got); d != "" {
		t.Fatalf("plan %d: result differs from the reference:\n%s", plan.GetPlanID(), d)
	}
	if res.GetPlanID() != plan.GetPlanID() || res.GetState() != datapb.CompactionTaskState_completed || res.GetChannel() != plan.GetChannel() || res.GetType() != plan.GetType() {
		t.Fatalf("result header %d %s %q %s, want plan %d completed %q %s", res.GetPlanID(), res.GetState(), res.GetChannel(), res.GetType(),
			plan.GetPlanID(), plan.GetChannel(), plan.GetType())
	}
}

// checkL0 compares a produced L0 result with the reference.
func checkL0(t testing.TB, store objstore.Store, plan *datapb.CompactionPlan, res *datapb.CompactionPlanResult) {
	t.Helper()
	ctx := context.Background()
	want, err := reference.L0(ctx, store, DefaultRootPath, plan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reference.ReadL0(ctx, store, DefaultRootPath, plan, res)
	if err != nil {
		t.Fatal(err)
	}
	if d := reference.DiffL0(want, got); d != "" {
		t.Fatalf("plan %d: L0 result differs from the reference:\n%s", plan.GetPlanID(), d)
	}
}

// progressRecorder keeps the last progress report.
type progressRecorder struct {
	mu    sync.Mutex
	last  Progress
	calls int
}

func (p *progressRecorder) record(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.calls = pr, p.calls+1
}

func (p *progressRecorder) final() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// snapshot maps every key in store to its bytes.
func snapshot(t testing.TB, store objstore.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(objs))
	for _, o := range objs {
		rc, err := store.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

// diffSnapshots lists keys added, removed or changed between a and b.
func diffSnapshots(a, b map[string][]byte) []string {
	var d []string
	for k, v := range a {
		w, ok := b[k]
		switch {
		case !ok:
			d = append(d, "removed "+k)
		case !bytes.Equal(v, w):
			d = append(d, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}
