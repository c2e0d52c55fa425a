package host

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// killOnDelete kills the MinIO server behind a store at the first Delete
// (a failed task's cleanup), and restarts it after restartAfter (never when
// it is 0).
type killOnDelete struct {
	objstore.Store
	srv          *objstoretest.Server
	restartAfter time.Duration
	once         sync.Once
	restarted    chan struct{}
}

func (k *killOnDelete) Delete(ctx context.Context, key string) error {
	k.once.Do(func() {
		k.srv.Kill()
		if k.restartAfter > 0 {
			go func() {
				time.Sleep(k.restartAfter)
				k.srv.Restart()
				close(k.restarted)
			}()
		}
	})
	return k.Store.Delete(ctx, key)
}

// TestCompactCleanupRealOutage kills a real MinIO server just as a failed
// task starts deleting what it wrote. An outage the cleanup can wait for
// leaves nothing behind and logs no warning; a longer one leaves objects,
// named by one WARN line, that sweep then finds exactly and removes.
func TestCompactCleanupRealOutage(t *testing.T) {
	srv := objstoretest.StartServer(t)
	store := srv.Store(t)
	ctx := context.Background()
	col := generate(t, store, smallGen(5))
	plan := col.MixPlan
	manyOutputs(t, plan)
	before := listing(t, store)

	run := func(restartAfter, cleanup time.Duration) (error, string) {
		var logs syncBuffer
		k := &killOnDelete{Store: store, srv: srv, restartAfter: restartAfter, restarted: make(chan struct{})}
		h := newTestHost(t, k, 0, func(o *Options) {
			o.CleanupTimeout = cleanup
			o.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
		})
		// The strategy fails after some batches, once outputs were written.
		_, err := h.Compact(ctx, plan, Native(&failingMix{Strategy: mixstrategy.New(), after: 4}))
		if restartAfter > 0 {
			<-k.restarted
		}
		return err, logs.String()
	}
	added := func() []string {
		var keys []string
		for key := range listing(t, store) {
			if _, ok := before[key]; !ok {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		return keys
	}

	// A 1.5 s outage inside a 45 s cleanup window: waited out.
	err, logs := run(1500*time.Millisecond, 45*time.Second)
	if err == nil || !strings.Contains(err.Error(), "strategy bug") {
		t.Fatalf("Compact: %v, want the strategy's failure", err)
	}
	if left := added(); len(left) > 0 {
		t.Fatalf("after an outage the cleanup could wait for, %d objects are left: %v", len(left), left)
	}
	if strings.Contains(logs, "[WARN]") {
		t.Fatalf("a cleanup that succeeded logged a warning:\n%s", logs)
	}

	// The server stays down past a 2 s cleanup window: objects are left,
	// reported once, and found by sweep once the server is back.
	err, logs = run(0, 2*time.Second)
	srv.Restart()
	left := added()
	if len(left) == 0 {
		t.Fatal("nothing was left: the outage did not outlast the cleanup")
	}
	if n := strings.Count(logs, "[WARN]"); n != 1 || !strings.Contains(logs, "failed task left objects in the store") {
		t.Fatalf("%d WARN lines, want one naming what was left:\n%s", n, logs)
	}
	if err == nil || !strings.Contains(err.Error(), "objects left under") {
		t.Fatalf("Compact: %v, want the failure and what it left", err)
	}
	orphans, err := FindOrphans(ctx, store, plan, SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, o := range orphans {
		found = append(found, o.Key)
	}
	if !slices.Equal(found, left) {
		t.Fatalf("sweep finds %v, the task left %v", found, left)
	}
	if _, err := Sweep(ctx, store, plan, SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	if rest := added(); len(rest) > 0 {
		t.Fatalf("after the sweep %d objects are left: %v", len(rest), rest)
	}
	for key, info := range listing(t, store) {
		if b := before[key]; b.Size != info.Size || !b.ModTime.Equal(info.ModTime) {
			t.Fatalf("input %s changed", key)
		}
	}
}
