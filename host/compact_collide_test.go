package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// resultKeys lists the keys of every object a result references, in
// result order (per segment: insert logs by field, stats logs, deltalogs).
func resultKeys(res *datapb.CompactionPlanResult) []string {
	var keys []string
	for _, s := range res.GetSegments() {
		for _, fbs := range [][]*datapb.FieldBinlog{s.GetInsertLogs(), s.GetField2StatslogPaths(), s.GetDeltalogs()} {
			for _, fb := range fbs {
				for _, b := range fb.GetBinlogs() {
					keys = append(keys, b.GetLogPath())
				}
			}
		}
	}
	return keys
}

// deleteKeys deletes keys from store, failing the test on an error.
func deleteKeys(t *testing.T, store objstore.Store, keys []string) {
	t.Helper()
	for _, k := range keys {
		if err := store.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
}

// planCase is a plan with the bundled strategy it needs.
type planCase struct {
	name string
	plan *datapb.CompactionPlan
	opt  CompactOption
}

// bothPlans returns col's mix and L0 plans.
func bothPlans(col *gen.Collection, p testPlugins) []planCase {
	return []planCase{{"mix", col.MixPlan, WithPlugin(p.mix)}, {"l0", col.L0Plan, WithPlugin(p.l0)}}
}

// TestCompactOutputCollision: an object already under one of a plan's
// output keys (a mix binlog of the second chunk, a mix stats log, an L0
// deltalog) fails the task with an error naming the key; that object and
// every other object are byte-identical afterwards and nothing is added.
func TestCompactOutputCollision(t *testing.T) {
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		col := generate(t, store, smallGen(5))
		manyOutputs(t, col.MixPlan)
		h := newTestHost(t, store, 0, nil)
		victims := func(res *datapb.CompactionPlanResult) []string {
			seg := res.GetSegments()[0]
			if fb := seg.GetInsertLogs(); len(fb) > 0 && len(fb[0].GetBinlogs()) > 1 {
				return []string{fb[0].GetBinlogs()[1].GetLogPath(), seg.GetField2StatslogPaths()[0].GetBinlogs()[0].GetLogPath()}
			}
			return []string{seg.GetDeltalogs()[0].GetBinlogs()[0].GetLogPath()}
		}
		for _, c := range bothPlans(col, plugins) {
			res, err := h.Compact(ctx, c.plan, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			deleteKeys(t, store, resultKeys(res))
			for _, victim := range victims(res) {
				if err := store.Put(ctx, victim, strings.NewReader("not this task's"), 15); err != nil {
					t.Fatal(err)
				}
				before := snapshot(t, store)
				_, err := h.Compact(ctx, c.plan, c.opt)
				expectCleanFailure(t, h, store, before, err, objstore.ErrExist, "write")
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", victim)) {
					t.Fatalf("%s: error %q does not name %s", c.name, err, victim)
				}
				deleteKeys(t, store, []string{victim})
			}
		}
	})
}

// TestCompactConcurrentSamePlan: two hosts (as two processes would) run the
// same plan at once on one store. Exactly one succeeds; the loser fails
// with ErrExist and its cleanup deletes none of the winner's objects: the
// store ends up as after one run.
func TestCompactConcurrentSamePlan(t *testing.T) {
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		col := generate(t, store, smallGen(6))
		manyOutputs(t, col.MixPlan)
		hosts := []*Host{newTestHost(t, store, 0, nil), newTestHost(t, store, 0, nil)}
		for _, c := range bothPlans(col, plugins) {
			res, err := hosts[0].Compact(ctx, c.plan, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			oneRun := slices.Sorted(maps.Keys(snapshot(t, store)))
			deleteKeys(t, store, resultKeys(res))
			for round := range 3 {
				results := make([]*datapb.CompactionPlanResult, len(hosts))
				errs := make([]error, len(hosts))
				var wg sync.WaitGroup
				for i, h := range hosts {
					wg.Go(func() { results[i], errs[i] = h.Compact(ctx, c.plan, c.opt) })
				}
				wg.Wait()
				var won []*datapb.CompactionPlanResult
				for i, err := range errs {
					switch {
					case err == nil:
						won = append(won, results[i])
					case !errors.Is(err, objstore.ErrExist):
						t.Fatalf("%s round %d: host %d failed with %v, want ErrExist", c.name, round, i, err)
					}
				}
				if len(won) != 1 {
					t.Fatalf("%s round %d: %d of 2 hosts succeeded, want exactly 1 (errors %v; %v)", c.name, round, len(won), errs[0], errs[1])
				}
				if got := slices.Sorted(maps.Keys(snapshot(t, store))); !slices.Equal(got, oneRun) {
					t.Fatalf("%s round %d: store holds %d keys, want the %d of one run", c.name, round, len(got), len(oneRun))
				}
				deleteKeys(t, store, resultKeys(won[0]))
			}
		}
	})
}

// outageStore refuses every Delete for the outage duration from the first
// Delete after arming: an outage that starts when the cleanup does.
type outageStore struct {
	objstore.Store
	outage  time.Duration
	start   atomic.Int64 // Unix nanos of the first Delete; 0 = armed, not started
	refused atomic.Int64
}

func (o *outageStore) Delete(ctx context.Context, key string) error {
	now := time.Now().UnixNano()
	o.start.CompareAndSwap(0, now)
	if now < o.start.Load()+int64(o.outage) {
		o.refused.Add(1)
		return errors.New("injected: delete refused, store unreachable")
	}
	return o.Store.Delete(ctx, key)
}

// TestCompactCleanupOutage: a failed task's cleanup waits out a delete
// outage shorter than Options.CleanupTimeout (store as before, nothing
// logged); a longer outage leaves the created objects, named by exactly
// one WARN line with their count and prefix and by the error.
func TestCompactCleanupOutage(t *testing.T) {
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	ctx := context.Background()
	base := objstoretest.Local(t)
	col := generate(t, base, smallGen(7))
	plan := col.MixPlan
	manyOutputs(t, plan)
	fs := &faultStore{Store: base}
	store := &outageStore{Store: fs}
	var logs syncBuffer
	h := newTestHost(t, store, 0, func(o *Options) {
		o.CleanupTimeout = 400 * time.Millisecond
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	})
	before := snapshot(t, base)
	run := func(outage time.Duration) error {
		fs.puts.Store(0)
		fs.failPut = 30
		store.outage = outage
		store.start.Store(0)
		fs.armed.Store(true)
		defer fs.armed.Store(false)
		_, err := h.Compact(ctx, plan, WithPlugin(plugins.mix))
		store.start.Store(-1 << 62) // outage over
		return err
	}

	err := run(150 * time.Millisecond)
	expectCleanFailure(t, h, base, before, err, errInjected, "write")
	if store.refused.Load() == 0 {
		t.Fatal("no delete was refused: the outage was not exercised")
	}
	if strings.Contains(logs.String(), "[WARN]") {
		t.Fatalf("a cleanup that succeeded logged a warning: %s", logs.String())
	}

	err = run(time.Hour)
	if !errors.Is(err, errInjected) {
		t.Fatalf("Compact: %v, want the injected failure", err)
	}
	added := diffSnapshots(before, snapshot(t, base))
	if len(added) == 0 {
		t.Fatal("nothing was left: the outage did not outlast the cleanup")
	}
	var left []string
	for _, d := range added {
		k, ok := strings.CutPrefix(d, "added ")
		if !ok {
			t.Fatalf("the failed task changed an existing object: %v", added)
		}
		left = append(left, k)
	}
	warns := strings.Count(logs.String(), "[WARN]")
	if warns != 1 {
		t.Fatalf("%d WARN lines, want exactly one:\n%s", warns, logs.String())
	}
	line := logs.String()
	t.Logf("cleanup log: %s", line)
	for _, want := range []string{
		"failed task left objects in the store",
		fmt.Sprintf("plan=%d", plan.GetPlanID()),
		fmt.Sprintf("count=%d", len(left)),
		"prefix=" + commonDir(left),
		left[0],
	} {
		if !strings.Contains(line, want) {
			t.Fatalf("WARN line lacks %q:\n%s", want, line)
		}
	}
	if want := fmt.Sprintf("%d objects left under %q in %s", len(left), commonDir(left), base); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	deleteKeys(t, base, left)
}

// commonDir is the longest common prefix of keys, cut after a "/".
func commonDir(keys []string) string {
	p := keys[0]
	for _, k := range keys[1:] {
		for !strings.HasPrefix(k, p) {
			p = p[:len(p)-1]
		}
	}
	return p[:strings.LastIndexByte(p, '/')+1]
}
