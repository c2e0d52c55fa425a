package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/objstore"
)

// runFlags are the root command's flags: run one plan through one plugin, then exit.
type runFlags struct {
	storage  storageFlags
	plugin   string
	plan     string
	root     string
	memory   humanBytes
	policy   string
	timeout  time.Duration
	cacheDir string
	progress string
	debug    bool
	logJSON  bool
	version  outputVersion
}

// runTwins are the root command's environment variables.
var runTwins = envTwins{
	"plugin": "COMPACT_HOST_PLUGIN", "plan": "COMPACT_HOST_PLAN", "root-path": "COMPACT_HOST_ROOT_PATH",
	"memory": "COMPACT_HOST_MEMORY", "policy": "COMPACT_HOST_POLICY", "timeout": "COMPACT_HOST_TIMEOUT",
	"cache-dir": "COMPACT_HOST_CACHE_DIR", "progress": "COMPACT_HOST_PROGRESS", "debug": "COMPACT_HOST_DEBUG",
	"log-json": "COMPACT_HOST_LOG_JSON", "storage-version": "COMPACT_HOST_STORAGE_VERSION",
}

func (f *runFlags) register(cmd *cobra.Command) {
	f.memory = humanBytes(host.DefaultMemoryBytes)
	fs := cmd.Flags()
	f.storage.register(fs)
	fs.StringVar(&f.plugin, "plugin", "", "strategy module to run, e.g. mix.wasm")
	fs.StringVar(&f.plan, "plan", "", "compaction plan file: Milvus datapb.CompactionPlan as protojson or binary protobuf")
	fs.StringVar(&f.root, "root-path", host.DefaultRootPath, "Milvus rootPath: the prefix of every log key in the store (see --storage)")
	fs.Var(&f.memory, "memory", "node memory budget the pool takes its share from, e.g. 4GiB")
	fs.StringVar(&f.policy, "policy", "static:1", policyUsage)
	fs.DurationVar(&f.timeout, "timeout", 15*time.Minute, "deadline for the whole run: opening the store, compiling the plugin and the compaction (exit 7 when it passes)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "wazero compilation cache directory; a known plugin then loads in milliseconds")
	fs.StringVar(&f.progress, "progress", "auto", "progress display: auto (a bar on a terminal, log lines otherwise), bar, log or none")
	fs.BoolVar(&f.debug, "debug", false, "debug logs, and full error detail (wasm stack, guest output) on failure")
	fs.BoolVar(&f.logJSON, "log-json", false, "logs as JSON lines on stderr")
	fs.Var(&f.version, "storage-version", storageVersionUsage)
	runTwins.describe(fs)
}

func (f *runFlags) logger() hclog.Logger {
	level := hclog.Info
	if f.debug {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "compact-host", Level: level, Output: os.Stderr, JSONFormat: f.logJSON,
		Exclude: f.echoesFailure})
}

// echoesFailure drops, without --debug, the host's log records that repeat the failure the final
// error line reports, so a failure is one line on stderr.
func (f *runFlags) echoesFailure(level hclog.Level, msg string, _ ...any) bool {
	return !f.debug && (msg == "compaction failed" || msg == "task failed, instance discarded")
}

// runPlan is the root command's action: compact one plan with one plugin and print the result.
func runPlan(cmd *cobra.Command, f *runFlags) error {
	if f.plugin == "" || f.plan == "" {
		return withCode(exitUsage, errors.New("give --plugin and --plan to run a compaction (see --help)"))
	}
	switch f.progress {
	case "auto", "bar", "log", "none":
	default:
		return withCode(exitUsage, fmt.Errorf("--progress %q: want auto, bar, log or none", f.progress))
	}
	if f.timeout <= 0 {
		return withCode(exitUsage, fmt.Errorf("--timeout %s: want a positive duration", f.timeout))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	log := f.logger()

	planBytes, err := os.ReadFile(f.plan)
	if err != nil {
		return withCode(fileCode(err), fmt.Errorf("read plan: %w", err))
	}
	plan, err := host.DecodePlan(planBytes)
	if err != nil {
		return withCode(exitBadInput, fmt.Errorf("plan %s: %w", f.plan, err))
	}
	wasm, err := os.ReadFile(f.plugin)
	if err != nil {
		return withCode(fileCode(err), fmt.Errorf("read plugin: %w", err))
	}
	policy, err := mempool.ParsePolicy(f.policy)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--policy: %w", err))
	}
	pool, _, err := newPolicyPool(policy, int64(f.memory))
	if err != nil {
		return err
	}
	store, err := f.storage.open(ctx)
	if err != nil {
		return f.timedOut(ctx, "opening the store", err)
	}

	prog := newProgressReporter(f.progress, os.Stderr, log, expectedRows(plan))
	h, err := host.New(ctx, host.Options{
		Store: store, RootPath: f.root, Pool: pool, Logger: log, Progress: prog.update, LimitHeap: true,
		OutputStorageVersion: int64(f.version),
		RuntimeConfig:        host.Config{CacheDir: f.cacheDir, Logger: log, TaskTimeout: f.timeout},
	})
	if err != nil {
		return f.timedOut(ctx, "starting the wasm runtime", withCode(exitFailure, err))
	}
	defer h.Close(context.Background())

	plugin, err := admitFile(ctx, h.Runtime(), f.plugin, wasm)
	if err != nil {
		return f.timedOut(ctx, "admitting the plugin", withCode(exitPlugin, err))
	}
	defer plugin.Release()

	start := time.Now()
	res, err := h.Compact(ctx, plan, host.WithPlugin(plugin))
	prog.finish()
	if err != nil {
		if f.debug {
			printErrorDetail(os.Stderr, err)
		}
		return f.timedOut(ctx, "", withCode(compactCode(err), err))
	}
	fmt.Fprintln(os.Stderr, summary(plan, res, prog.last, time.Since(start)))
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(res)
	if err != nil {
		return withCode(exitFailure, err)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(out))
	return err
}

// timedOut turns a failure after the run's --timeout passed into a deadline failure (exit 7),
// whichever step noticed it: it says the timeout was exceeded and, before the compaction, while
// doing what (the compaction's own error names the stage that noticed).
func (f *runFlags) timedOut(ctx context.Context, step string, err error) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	if step != "" {
		step = " while " + step
	}
	return withCode(exitCompaction, fmt.Errorf("task timeout %s exceeded%s: %w", f.timeout, step, err))
}

// admitFile admits a plugin file: "mix@1.2.0.wasm" must carry a manifest saying mix 1.2.0, as in
// the plugin store; any other file name (mix.wasm) takes its name and version from its manifest.
func admitFile(ctx context.Context, rt *host.Runtime, path string, wasm []byte) (*host.Plugin, error) {
	base := strings.TrimSuffix(filepath.Base(path), ".wasm")
	if _, _, err := host.ParseRef(base); err == nil {
		p, err := rt.Admit(ctx, base, wasm)
		if err != nil {
			return nil, err
		}
		inst, err := rt.NewInstance(ctx, p, host.InstanceConfig{Grant: max(64<<20, p.MinMemory()), ManifestOnly: true})
		if err != nil {
			p.Release()
			return nil, err
		}
		inst.Close()
		return p, nil
	}
	return rt.AdmitUnnamed(ctx, wasm, 64<<20)
}

func fileCode(err error) int {
	if errors.Is(err, os.ErrNotExist) {
		return exitNotFound
	}
	return exitFailure
}

// compactCode maps a compaction failure to an exit code (README's table): a deadline is 7 whatever
// stage noticed it; a plan or object that does not decode or validate, and an output key that is
// already taken, is 4; an object store that
// fails or refuses an operation is 5 (3 for a missing object).
func compactCode(err error) int {
	var ce *host.CompactError
	switch {
	case errors.Is(err, host.ErrDeadline):
		return exitCompaction
	case errors.Is(err, host.ErrInvalidPlan), errors.Is(err, objstore.ErrInvalidKey), errors.Is(err, corrupt.Err):
		return exitBadInput
	case errors.Is(err, objstore.ErrExist):
		// The plan's output ranges name objects that already exist (another
		// task's outputs, or a rerun of this plan): a plan problem, and
		// nothing was overwritten.
		return exitBadInput
	case errors.Is(err, host.ErrRefused):
		return exitPlugin
	case errors.Is(err, objstore.ErrNotExist):
		return exitNotFound
	case objstore.IsStoreError(err):
		return exitStorage
	case errors.As(err, &ce) && ce.Stage == "read":
		// Everything the store returned arrived; what failed is decoding or checking it.
		return exitBadInput
	case errors.As(err, &ce) && ce.Stage == "write":
		return exitFailure
	}
	return exitCompaction
}

// printErrorDetail shows what --debug promises: the wasm stack and guest output of a strategy
// failure.
func printErrorDetail(w *os.File, err error) {
	var te *host.TaskError
	if errors.As(err, &te) {
		if te.Stack != "" {
			fmt.Fprintf(w, "wasm stack:\n%s\n", te.Stack)
		}
		if te.Stderr != "" {
			fmt.Fprintf(w, "guest output:\n%s\n", te.Stderr)
		}
	}
}

// summary is the one sentence a person reads after a run.
func summary(plan *datapb.CompactionPlan, res *datapb.CompactionPlanResult, last host.Progress, took time.Duration) string {
	took = took.Round(time.Millisecond)
	if plan.GetType() == datapb.CompactionType_Level0DeleteCompaction {
		l0 := 0
		for _, s := range plan.GetSegmentBinlogs() {
			if s.GetLevel() == datapb.SegmentLevel_L0 {
				l0++
			}
		}
		return fmt.Sprintf("l0 plan %d: %d L0 segment(s), %d target(s); %d deletes routed as %d records to %d segment(s) in %s",
			plan.GetPlanID(), l0, len(plan.GetSegmentBinlogs())-l0, last.DeletesRead, last.RowsWritten, len(res.GetSegments()), took)
	}
	return fmt.Sprintf("mix plan %d: %d segment(s) in, %d out; %d rows read, %d kept, %d deleted, %d expired, %d dropped for other reasons in %s",
		plan.GetPlanID(), len(plan.GetSegmentBinlogs()), len(res.GetSegments()), last.RowsRead, rowsOut(res),
		last.Deleted, last.Expired, last.Dropped, took)
}

func rowsOut(res *datapb.CompactionPlanResult) int64 {
	var n int64
	for _, s := range res.GetSegments() {
		n += s.GetNumOfRows()
	}
	return n
}

// expectedRows is the number of input rows a mix plan will read: the entries of each segment's
// first field, as Milvus counts them.
func expectedRows(plan *datapb.CompactionPlan) int64 {
	var n int64
	for _, s := range plan.GetSegmentBinlogs() {
		if fbs := s.GetFieldBinlogs(); len(fbs) > 0 {
			for _, b := range fbs[0].GetBinlogs() {
				n += b.GetEntriesNum()
			}
		}
	}
	return n
}
