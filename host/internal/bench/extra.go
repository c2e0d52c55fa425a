package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/klauspost/compress/zstd"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

var l0Line = regexp.MustCompile(`(\d+) deletes, (\d+) targets, (\d+) candidate pairs, (\d+) probes avoided by pk range, (\d+) hits`)

// runL0 applies the dataset's L0 segment to its targets. Extra reports
// deletes x targets per second and the strategy's own counts (candidate
// pairs, probes avoided by the pk-range pruning, hits).
func runL0(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	if ds.L0Plan == nil {
		return nil, errors.New("dataset has no L0 plan")
	}
	hs, err := setupHost(ctx, env, c, ds, "l0")
	if err != nil {
		return nil, err
	}
	defer hs.h.Close(ctx)
	store, w, h, opt := hs.store, hs.w, hs.h, hs.opt
	r := &Result{Rows: int64(c.Data.L0Deletes), BaseRSS: procStatus("VmRSS"), Extra: map[string]float64{}}
	for range c.Reps {
		start := time.Now()
		res, err := h.Compact(ctx, ds.L0Plan, opt)
		if err != nil {
			return nil, err
		}
		r.AllSeconds = append(r.AllSeconds, time.Since(start).Seconds())
		// Only the new deltalogs are outputs; the targets' insert logs are inputs.
		for _, s := range res.GetSegments() {
			for _, fb := range s.GetDeltalogs() {
				for _, b := range fb.GetBinlogs() {
					r.OutputStored += b.GetLogSize()
					r.RowsOut += b.GetEntriesNum()
					if err := store.Delete(ctx, b.GetLogPath()); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	w.stop()
	r.Seconds, r.Lease = minOf(r.AllSeconds), w.maxUsed
	r.RowsOut /= int64(c.Reps)
	r.Extra["targets"] = float64(c.Data.Segments)
	r.Extra["deletes_x_targets_per_s"] = float64(c.Data.L0Deletes) * float64(c.Data.Segments) / r.Seconds
	if m := l0Line.FindAllStringSubmatch(capturedLogs(), -1); len(m) > 0 {
		last := m[len(m)-1]
		for i, k := range []string{"", "deletes", "targets_logged", "candidate_pairs", "probes_avoided", "hits"} {
			if i > 0 {
				v, _ := strconv.ParseFloat(last[i], 64)
				r.Extra[k] = v
			}
		}
	} else {
		r.Note = "the strategy's summary line was not found in the logs"
	}
	return r, nil
}

// runHotSwap measures the time from mix@1.1.0.wasm landing in a watched
// directory to the first task served by it: registry poll (admission,
// compilation, trial instance), Acquire, and one small compaction.
func runHotSwap(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	store, err := ds.Store()
	if err != nil {
		return nil, err
	}
	v1, err := os.ReadFile(filepath.Join(env.WasmDir, "mix.wasm"))
	if err != nil {
		return nil, err
	}
	v2, err := os.ReadFile(filepath.Join(env.WasmDir, "mix@1.1.0.wasm"))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "bench-hotswap")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	src, cache := filepath.Join(tmp, "plugins"), filepath.Join(tmp, "cache")
	for _, d := range []string{src, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if c.Warm {
		// Another runtime compiles the new binary into the cache first,
		// as a previous process (or a canary host) would have.
		rt, err := host.NewRuntime(ctx, host.Config{CacheDir: cache})
		if err != nil {
			return nil, err
		}
		p, err := rt.Admit(ctx, "mix@1.1.0", v2)
		if err != nil {
			return nil, err
		}
		p.Release()
		rt.Close(ctx)
	}
	if err := os.WriteFile(filepath.Join(src, "mix@1.0.0.wasm"), v1, 0o644); err != nil {
		return nil, err
	}
	rt, err := host.NewRuntime(ctx, host.Config{CacheDir: cache, Logger: caseLogger()})
	if err != nil {
		return nil, err
	}
	reg := host.NewRegistry(rt, host.DirSource(src), host.RegistryConfig{Logger: caseLogger()})
	defer reg.Close()
	if err := reg.Poll(ctx); err != nil {
		return nil, err
	}
	pool, err := mempool.NewPool(c.PoolBytes)
	if err != nil {
		return nil, err
	}
	h, err := host.New(ctx, host.Options{Store: store, Runtime: rt, Plugins: reg, Pool: pool, Logger: caseLogger()})
	if err != nil {
		return nil, err
	}
	defer h.Close(ctx)
	// Serve one task on 1.0.0 so that the host is warm.
	if _, _, _, err := compactOnce(ctx, h, store, ds.MixPlan, nil, ds.Expected.Kept); err != nil {
		return nil, err
	}
	r := &Result{BaseRSS: procStatus("VmRSS"), Extra: map[string]float64{}}
	start := time.Now()
	if err := writeAtomic(filepath.Join(src, "mix@1.1.0.wasm"), v2); err != nil {
		return nil, err
	}
	if err := reg.Poll(ctx); err != nil {
		return nil, err
	}
	polled := time.Since(start)
	p, err := reg.Acquire("mix")
	if err != nil {
		return nil, err
	}
	version := p.ID().Version
	p.Release()
	if version != "1.1.0" {
		return nil, fmt.Errorf("after the poll the active mix is %s, want 1.1.0", version)
	}
	took, _, _, err := compactOnce(ctx, h, store, ds.MixPlan, nil, ds.Expected.Kept)
	if err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.AllSeconds = []float64{r.Seconds}
	r.Extra["poll_s"] = polled.Seconds()
	r.Extra["task_s"] = took.Seconds()
	return r, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// shiftIDs returns a copy of plan with its plan ID and pre-allocated
// segment and log IDs moved by k, so that copies of one plan run at once
// write to distinct keys.
func shiftIDs(plan *datapb.CompactionPlan, k int64) *datapb.CompactionPlan {
	p := proto.Clone(plan).(*datapb.CompactionPlan)
	p.PlanID += k
	const step = 1 << 40
	p.PreAllocatedSegmentIDs.Begin += k * step
	p.PreAllocatedSegmentIDs.End += k * step
	p.PreAllocatedLogIDs.Begin += k * step
	p.PreAllocatedLogIDs.End += k * step
	return p
}

// runConcurrency runs Plans copies of the mix plan at once under a pool
// sized for Fit of them (Fit leases plus half of one), measured from a
// solo run's lease. Extra: throughput, lease waits, and the pool watch
// (largest usage and lease count, snapshots with usage above the total).
func runConcurrency(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	store, err := ds.Store()
	if err != nil {
		return nil, err
	}
	big, err := mempool.NewPool(c.PoolBytes)
	if err != nil {
		return nil, err
	}
	w := watchPool(big)
	h, opt, err := newHost(ctx, env, c, store, big, "mix")
	if err != nil {
		return nil, err
	}
	solo, _, _, err := compactOnce(ctx, h, store, ds.MixPlan, opt, ds.Expected.Kept)
	h.Close(ctx)
	w.stop()
	if err != nil {
		return nil, err
	}
	lease := w.maxUsed
	total := int64(c.Fit)*lease + lease/2
	pool, err := mempool.NewPool(total)
	if err != nil {
		return nil, err
	}
	w = watchPool(pool)
	h, opt, err = newHost(ctx, env, c, store, pool, "mix")
	if err != nil {
		return nil, err
	}
	defer h.Close(ctx)
	r := &Result{Rows: ds.Expected.Rows * int64(c.Plans), InputBytes: ds.InputMemorySize * int64(c.Plans), BaseRSS: procStatus("VmRSS"), Extra: map[string]float64{}}
	submitted := make([]time.Time, c.Plans)
	errs := make([]error, c.Plans)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.Plans {
		plan := shiftIDs(ds.MixPlan, int64(i+1))
		submitted[i] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, errs[i] = compactOnce(ctx, h, store, plan, opt, ds.Expected.Kept)
		}()
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	w.stop()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var waits []float64
	for i := range c.Plans {
		owner := fmt.Sprintf("plan %d", ds.MixPlan.GetPlanID()+int64(i+1))
		seen, ok := w.firstSeen[owner]
		if !ok {
			return nil, fmt.Errorf("the pool watch never saw a lease of %s", owner)
		}
		waits = append(waits, seen.Sub(submitted[i]).Seconds())
	}
	slices.Sort(waits)
	r.AllSeconds = []float64{r.Seconds}
	r.Lease = w.maxUsed
	r.Extra["solo_s"] = solo.Seconds()
	r.Extra["lease_bytes"] = float64(lease)
	r.Extra["pool_total"] = float64(total)
	r.Extra["max_used"] = float64(w.maxUsed)
	r.Extra["max_leases"] = float64(w.maxLeases)
	r.Extra["overcommit_snapshots"] = float64(w.overCommit)
	r.Extra["snapshots"] = float64(w.snapshots)
	r.Extra["wait_p50_s"] = waits[len(waits)/2]
	r.Extra["wait_p99_s"] = waits[min(len(waits)-1, int(float64(len(waits))*0.99))]
	r.Extra["serial_estimate_s"] = solo.Seconds() * float64(c.Plans)
	return r, nil
}

// appendVectors appends the vector bytes of seg to raw until it holds limit
// bytes.
func appendVectors(ctx context.Context, store objstore.Store, plan *datapb.CompactionPlan, seg *datapb.CompactionSegmentBinlogs, raw []byte, limit int) ([]byte, error) {
	if len(raw) >= limit {
		return raw, nil
	}
	rd, err := segread.Open(ctx, store, plan.GetSchema(), seg, segread.Options{})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	for len(raw) < limit {
		b, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		v := b.Columns[gen.VectorField].(*array.FixedSizeBinary)
		for i := range v.Len() {
			raw = append(raw, v.Value(i)...)
		}
		b.Release()
	}
	return raw, nil
}

// runZstd encodes and decodes the first 64 MiB of the dataset's vectors
// with klauspost/compress/zstd set up as arrow-go's Parquet codec sets it
// up for ZSTD level 3, in 1 MiB blocks (a Parquet page), on one goroutine,
// Reps passes; the median pass is reported.
func runZstd(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	store, err := ds.Store()
	if err != nil {
		return nil, err
	}
	plan, err := filledPlan(ds.MixPlan)
	if err != nil {
		return nil, err
	}
	var raw []byte
	for _, seg := range plan.GetSegmentBinlogs() {
		if raw, err = appendVectors(ctx, store, plan, seg, raw, 64<<20); err != nil {
			return nil, err
		}
	}
	const block = 1 << 20
	// The options arrow-go's Parquet ZSTD codec uses (parquet/compress/zstd.go).
	enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(3)),
		zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	r := &Result{InputBytes: int64(len(raw)), BaseRSS: procStatus("VmRSS"), Extra: map[string]float64{}}
	var blocks [][]byte
	var encs, decs []float64
	for range max(c.Reps, 1) {
		blocks = blocks[:0]
		start := time.Now()
		for off := 0; off < len(raw); off += block {
			blocks = append(blocks, enc.EncodeAll(raw[off:min(off+block, len(raw))], nil))
		}
		encs = append(encs, time.Since(start).Seconds())
		start = time.Now()
		out := make([]byte, 0, block)
		for _, b := range blocks {
			if out, err = dec.DecodeAll(b, out[:0]); err != nil {
				return nil, err
			}
		}
		decs = append(decs, time.Since(start).Seconds())
	}
	// Medians, so that one pass hit by another process's burst does not count.
	encBest, decBest := median(encs), median(decs)
	var comp int
	for _, b := range blocks {
		comp += len(b)
	}
	r.OutputStored = int64(comp)
	r.Seconds = encBest
	r.AllSeconds = []float64{encBest, decBest}
	r.Extra["encode_MBps"] = float64(len(raw)) / encBest / 1e6
	r.Extra["decode_MBps"] = float64(len(raw)) / decBest / 1e6
	r.Extra["ratio"] = float64(len(raw)) / float64(comp)
	return r, nil
}
