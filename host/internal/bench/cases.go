package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Case is one measurement, run in its own process so that its peak RSS is
// its own.
type Case struct {
	Name      string
	Kind      string // KindMix, KindCopy, KindL0, KindHotSwap, KindConcurrency, KindZstd
	Data      DataSpec
	Mode      string // ModeWasm, ModeWasmUnchecked, ModeNative (mix, l0)
	Vectors   string // VectorsZstd3 (default), VectorsRaw, VectorsNoDict
	Store     string // "local" (default) or "minio"
	Reps      int    // repetitions; the best time is reported (default 1)
	PoolBytes int64  // pool total (default 16 GiB)
	Plans     int    // concurrency: plans run at once
	Fit       int    // concurrency: plans the pool fits
	Warm      bool   // hot swap: compilation cache warm
	// Host knobs (0 = the host's defaults) and the child's GOMEMLIMIT.
	BatchRows, ReadParallelism, UploadParallelism int
	MemLimit                                      string
	// NoHeapLimit turns host.Options.LimitHeap off (compact-host sets it).
	NoHeapLimit bool
}

// Case kinds.
const (
	KindMix         = "mix"
	KindCopy        = "copy"
	KindL0          = "l0"
	KindHotSwap     = "hotswap"
	KindConcurrency = "concurrency"
	KindZstd        = "zstd"
)

// Strategy modes and vector codecs.
const (
	ModeWasm          = "wasm"
	ModeWasmUnchecked = "wasm-unchecked" // host.Config.Uninterruptible: no loop checks
	ModeNative        = "native"

	VectorsZstd3  = "zstd3"        // Milvus's default: ZSTD-3, dictionary on
	VectorsRaw    = "raw"          // vectors uncompressed, no dictionary
	VectorsNoDict = "zstd3-nodict" // ZSTD-3, dictionary off for vectors
)

// Env is what every case process shares: where datasets, wasm builds and
// the compilation cache live.
type Env struct {
	WorkDir  string // datasets
	WasmDir  string // mix.wasm, l0.wasm, mix@1.1.0.wasm
	CacheDir string // wazero compilation cache for the measured runs
	Profile  string // CPU profile file for the case ("" = none)
}

// Result is one case's measurement.
type Result struct {
	Case         Case
	Rows         int64   // input rows
	RowsOut      int64   // rows written
	InputBytes   int64   // uncompressed input (gen InputMemorySize)
	InputStored  int64   // stored input bytes
	OutputStored int64   // stored output bytes (insert binlogs + stats logs)
	Seconds      float64 // best of Reps
	AllSeconds   []float64
	MBps         float64 // InputBytes / Seconds / 1e6
	RowsPerSec   float64
	BaseRSS      int64 // VmRSS after setup, before the first compaction
	PeakRSS      int64 // VmHWM at the end
	Lease        int64 // the largest pool usage seen (the task's lease)
	Extra        map[string]float64
	Note         string
}

// FieldOptions returns the writer options of a Vectors setting.
func FieldOptions(vectors string) (map[int64]binlog.WriterOptions, error) {
	switch vectors {
	case "", VectorsZstd3:
		return nil, nil
	case VectorsRaw:
		return map[int64]binlog.WriterOptions{gen.VectorField: {Compression: &compress.Codecs.Uncompressed, DisableDictionary: true}}, nil
	case VectorsNoDict:
		return map[int64]binlog.WriterOptions{gen.VectorField: {DisableDictionary: true}}, nil
	}
	return nil, fmt.Errorf("unknown vectors setting %q", vectors)
}

// Run executes c in this process.
func Run(ctx context.Context, env Env, c Case) (*Result, error) {
	if c.Reps <= 0 {
		c.Reps = 1
	}
	if c.PoolBytes <= 0 {
		c.PoolBytes = 16 << 30
	}
	stop, err := startProfile(env.Profile)
	if err != nil {
		return nil, err
	}
	defer stop()
	live := watchLiveHeap()
	var r *Result
	switch c.Kind {
	case KindMix:
		r, err = runMix(ctx, env, c)
	case KindCopy:
		r, err = runCopy(ctx, env, c)
	case KindL0:
		r, err = runL0(ctx, env, c)
	case KindHotSwap:
		r, err = runHotSwap(ctx, env, c)
	case KindConcurrency:
		r, err = runConcurrency(ctx, env, c)
	case KindZstd:
		r, err = runZstd(ctx, env, c)
	default:
		err = fmt.Errorf("unknown case kind %q", c.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", c.Name, err)
	}
	r.Case = c
	r.PeakRSS = procStatus("VmHWM")
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra["load1"] = load1()
	r.Extra["live_heap_mib"] = float64(live()) / (1 << 20)
	if r.Seconds > 0 {
		r.MBps = float64(r.InputBytes) / r.Seconds / 1e6
		r.RowsPerSec = float64(r.Rows) / r.Seconds
	}
	return r, nil
}

// openStore returns the dataset's store: the local directory, or a copy of
// it on MinIO (uploaded once per dataset, under the dataset's name).
func openStore(ctx context.Context, c Case, ds *Dataset) (objstore.Store, error) {
	local, err := ds.Store()
	if err != nil {
		return nil, err
	}
	if c.Store == "" || c.Store == "local" {
		return local, nil
	}
	if c.Store != "minio" {
		return nil, fmt.Errorf("unknown store %q", c.Store)
	}
	endpoint := os.Getenv("COMPACT_HOST_TEST_S3_ENDPOINT")
	if endpoint == "" {
		return nil, errors.New("minio store: COMPACT_HOST_TEST_S3_ENDPOINT is not set (run under ./scripts/test.sh)")
	}
	s3, err := objstore.NewS3(ctx, "compacthost-bench", "bench/"+ds.Spec.Name(), objstore.Options{Endpoint: endpoint,
		AccessKey: os.Getenv("COMPACT_HOST_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("COMPACT_HOST_TEST_S3_SECRET_KEY"), CreateBucket: true})
	if err != nil {
		return nil, err
	}
	const marker = "uploaded"
	if _, err := s3.Stat(ctx, marker); err == nil {
		return s3, nil
	}
	objs, err := local.List(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if err := copyObject(ctx, local, s3, o.Key, o.Size); err != nil {
			return nil, err
		}
	}
	if err := s3.Put(ctx, marker, emptyReader{}, 0); err != nil {
		return nil, err
	}
	return s3, nil
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

func copyObject(ctx context.Context, from, to objstore.Store, key string, size int64) error {
	rc, err := from.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	return to.Put(ctx, key, rc, size)
}

// poolWatch records the largest usage of a pool and checks it never
// exceeds the total.
type poolWatch struct {
	mu         sync.Mutex
	maxUsed    int64
	maxLeases  int
	overCommit int
	snapshots  int
	firstSeen  map[string]time.Time
	cancel     func()
	done       chan struct{}
}

// hostSetup is what the mix and L0 cases share: the case's store, a pool of c.PoolBytes watched
// for over-commit, and a host running the named strategy. The caller closes h.
type hostSetup struct {
	store objstore.Store
	w     *poolWatch
	h     *host.Host
	opt   host.CompactOption
}

func setupHost(ctx context.Context, env Env, c Case, ds *Dataset, wasmName string) (*hostSetup, error) {
	store, err := openStore(ctx, c, ds)
	if err != nil {
		return nil, err
	}
	pool, err := mempool.NewPool(c.PoolBytes)
	if err != nil {
		return nil, err
	}
	w := watchPool(pool)
	h, opt, err := newHost(ctx, env, c, store, pool, wasmName)
	if err != nil {
		return nil, err
	}
	return &hostSetup{store: store, w: w, h: h, opt: opt}, nil
}

func watchPool(p *mempool.Pool) *poolWatch {
	ch, cancel := p.Subscribe()
	w := &poolWatch{done: make(chan struct{}), firstSeen: map[string]time.Time{}}
	// Subscribe coalesces snapshots a slow reader missed, so a poller of
	// Stats every millisecond adds samples between them.
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-t.C:
				w.observe(p.Stats())
			}
		}
	}()
	w.cancel = func() { close(stopPoll); <-polled; cancel() }
	go func() {
		defer close(w.done)
		for s := range ch {
			w.observe(s)
		}
	}()
	return w
}

func (w *poolWatch) observe(s mempool.Stats) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snapshots++
	w.maxUsed = max(w.maxUsed, s.Used)
	w.maxLeases = max(w.maxLeases, s.Leases)
	if s.Used > s.Total {
		w.overCommit++
	}
	for owner := range s.LeasesByOwner {
		if _, ok := w.firstSeen[owner]; !ok {
			w.firstSeen[owner] = now
		}
	}
}

func (w *poolWatch) stop() { w.cancel(); <-w.done }

// newHost builds the host and the strategy option of a mix or L0 case.
func newHost(ctx context.Context, env Env, c Case, store objstore.Store, pool *mempool.Pool, wasmName string) (*host.Host, host.CompactOption, error) {
	fo, err := FieldOptions(c.Vectors)
	if err != nil {
		return nil, nil, err
	}
	rt, err := host.NewRuntime(ctx, host.Config{CacheDir: env.CacheDir, Uninterruptible: c.Mode == ModeWasmUnchecked, Logger: caseLogger()})
	if err != nil {
		return nil, nil, err
	}
	h, err := host.New(ctx, host.Options{Store: store, Runtime: rt, Pool: pool, FieldOptions: fo, TaskTimeout: time.Hour, Logger: caseLogger(),
		LimitHeap: !c.NoHeapLimit && c.MemLimit == "", BatchRows: c.BatchRows, ReadParallelism: c.ReadParallelism, UploadParallelism: c.UploadParallelism})
	if err != nil {
		return nil, nil, err
	}
	switch c.Mode {
	case ModeNative:
		return h, host.Native(nativeStrategy(wasmName)), nil
	case ModeWasm, ModeWasmUnchecked, "":
		p, err := admitFile(ctx, rt, env, wasmName)
		if err != nil {
			return nil, nil, err
		}
		return h, host.WithPlugin(p), nil
	}
	return nil, nil, fmt.Errorf("unknown mode %q", c.Mode)
}

// compactOnce runs one compaction, checks the row count and deletes its
// outputs. It returns the elapsed time and the stored output bytes.
func compactOnce(ctx context.Context, h *host.Host, store objstore.Store, plan *datapb.CompactionPlan, opt host.CompactOption, wantRows int64) (time.Duration, int64, int64, error) {
	var opts []host.CompactOption
	if opt != nil {
		opts = append(opts, opt)
	}
	start := time.Now()
	res, err := h.Compact(ctx, plan, opts...)
	took := time.Since(start)
	if err != nil {
		return 0, 0, 0, err
	}
	var rows int64
	for _, s := range res.GetSegments() {
		rows += s.GetNumOfRows()
	}
	if wantRows >= 0 && rows != wantRows {
		return 0, 0, 0, fmt.Errorf("plan %d wrote %d rows, want %d", plan.GetPlanID(), rows, wantRows)
	}
	stored, err := deleteOutputs(ctx, store, res)
	if err != nil {
		return 0, 0, 0, err
	}
	return took, stored, rows, nil
}

// deleteOutputs deletes every object res references (outputs are created,
// never overwritten, so a plan runs again only once they are gone) and
// returns their total stored size.
func deleteOutputs(ctx context.Context, store objstore.Store, res *datapb.CompactionPlanResult) (int64, error) {
	var stored int64
	for _, s := range res.GetSegments() {
		for _, fbs := range [][]*datapb.FieldBinlog{s.GetInsertLogs(), s.GetField2StatslogPaths(), s.GetDeltalogs()} {
			for _, fb := range fbs {
				for _, b := range fb.GetBinlogs() {
					stored += b.GetLogSize()
					if b.GetLogPath() == "" {
						continue
					}
					if err := store.Delete(ctx, b.GetLogPath()); err != nil {
						return 0, err
					}
				}
			}
		}
	}
	return stored, nil
}

func runMix(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	hs, err := setupHost(ctx, env, c, ds, "mix")
	if err != nil {
		return nil, err
	}
	defer hs.h.Close(ctx)
	store, w, h, opt := hs.store, hs.w, hs.h, hs.opt
	r := &Result{Rows: ds.Expected.Rows, InputBytes: ds.InputMemorySize, InputStored: ds.InputLogSize, BaseRSS: procStatus("VmRSS")}
	for range c.Reps {
		took, stored, rows, err := compactOnce(ctx, h, store, ds.MixPlan, opt, ds.Expected.Kept)
		if err != nil {
			return nil, err
		}
		r.AllSeconds = append(r.AllSeconds, took.Seconds())
		r.OutputStored, r.RowsOut = stored, rows
	}
	w.stop()
	r.Seconds, r.Lease = minOf(r.AllSeconds), w.maxUsed
	return r, nil
}

// runCopy is the floor: read and decode every column of every input
// segment and append every row to the outputs (read, decompress, decode,
// encode, compress, write), with no strategy and no delete handling.
func runCopy(ctx context.Context, env Env, c Case) (*Result, error) {
	ds, err := Prepare(ctx, env.WorkDir, c.Data)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, c, ds)
	if err != nil {
		return nil, err
	}
	fo, err := FieldOptions(c.Vectors)
	if err != nil {
		return nil, err
	}
	r := &Result{Rows: ds.Expected.Rows, InputBytes: ds.InputMemorySize, InputStored: ds.InputLogSize, BaseRSS: procStatus("VmRSS")}
	for range c.Reps {
		start := time.Now()
		rows, stored, err := CopyPlan(ctx, store, ds.MixPlan, fo)
		if err != nil {
			return nil, err
		}
		r.AllSeconds = append(r.AllSeconds, time.Since(start).Seconds())
		r.OutputStored, r.RowsOut = stored, rows
	}
	r.Seconds = minOf(r.AllSeconds)
	return r, nil
}

// CopyPlan copies every row of plan's input segments into outputs of at
// most plan.max_size bytes through segread and segwrite, deletes what it
// wrote, and returns the rows and stored bytes written.
func CopyPlan(ctx context.Context, store objstore.Store, plan *datapb.CompactionPlan, fo map[int64]binlog.WriterOptions) (rows, stored int64, err error) {
	plan, err = filledPlan(plan)
	if err != nil {
		return 0, 0, err
	}
	segs := plan.GetSegmentBinlogs()
	if len(segs) == 0 {
		return 0, 0, errors.New("copy: plan has no segments")
	}
	var inRows int64
	for _, s := range segs {
		if fbs := s.GetFieldBinlogs(); len(fbs) > 0 {
			for _, b := range fbs[0].GetBinlogs() {
				inRows += b.GetEntriesNum()
			}
		}
	}
	w, err := segwrite.New(segwrite.Config{
		Store: store, Root: host.DefaultRootPath, Schema: plan.GetSchema(),
		CollectionID: segs[0].GetCollectionID(), PartitionID: segs[0].GetPartitionID(), Channel: plan.GetChannel(),
		SegmentIDs: &segwrite.IDRange{Next: plan.GetPreAllocatedSegmentIDs().GetBegin(), End: plan.GetPreAllocatedSegmentIDs().GetEnd()},
		LogIDs:     &segwrite.IDRange{Next: plan.GetPreAllocatedLogIDs().GetBegin(), End: plan.GetPreAllocatedLogIDs().GetEnd()},
		Timestamp:  uint64(plan.GetStartTime()), FieldOptions: fo,
		BloomCapacity: int(max(inRows, 1)), // the pipeline sizes its filters from the input rows too
	})
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if aerr := w.Abort(context.WithoutCancel(ctx)); aerr != nil && err == nil {
			err = aerr
		}
	}()
	maxSize := plan.GetMaxSize()
	var bytes int64
	out := 0
	for _, seg := range segs {
		rd, err := segread.Open(ctx, store, plan.GetSchema(), seg, segread.Options{BatchRows: mempool.DefaultBatchRows})
		if err != nil {
			return 0, 0, err
		}
		for {
			b, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return 0, 0, err
			}
			if maxSize > 0 && bytes > 0 && bytes+b.Bytes > maxSize {
				out++
				bytes = 0
			}
			err = w.Append(ctx, out, b.Columns, 0, b.Rows)
			bytes += b.Bytes
			rows += int64(b.Rows)
			b.Release()
			if err != nil {
				rd.Close()
				return 0, 0, err
			}
		}
		rd.Close()
	}
	if _, err := w.Close(ctx); err != nil {
		return 0, 0, err
	}
	_, stored = w.Stats()
	return rows, stored, nil
}

func minOf(xs []float64) float64 {
	m := 0.0
	for i, x := range xs {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}
