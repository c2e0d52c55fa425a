package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/storage/gen"
)

func newGenCommand() *cobra.Command {
	var (
		sf      storageFlags
		cfg     = gen.DefaultConfig()
		pkType  string
		deletes string
		planDir string
		asJSON  bool
		now     string
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write a demo Milvus collection and ready-to-run compaction plans",
		Long: `gen writes a realistic Milvus collection into the object store: N segments of M rows with an
Int64 or VarChar primary key, a FloatVector, a few scalar and nullable fields, deltalogs that delete
a chosen fraction of rows, timestamps spread so a chosen fraction is TTL-expired, and stats logs.
--storage-version 2 writes the insert data as Milvus 2.6 storage-v2 column-group Parquet files
(--mixed-versions: every other segment stays v1); the rows and expected outcome do not change.
--bm25 adds a BM25 function: a VarChar text field, its SparseFloatVector output and each
segment's BM25 stats log under bm25_stats/.
It also writes the matching mix and L0 compaction plans (Milvus datapb.CompactionPlan, protojson)
into --plans, and prints what a correct compaction must report.`,
		Example: `  compact-host gen --storage ./demo --segments 4 --rows 10000
  compact-host gen --storage s3://bucket/files --endpoint 127.0.0.1:9000 --insecure --pk varchar
  compact-host gen --storage ./demo-v2 --storage-version 2 --mixed-versions`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.PKType, err = parsePKType(pkType); err != nil {
				return withCode(exitUsage, err)
			}
			if cfg.Deletes, err = gen.ParseDeleteDistribution(deletes); err != nil {
				return withCode(exitUsage, err)
			}
			if now != "" {
				if cfg.Now, err = time.Parse(time.RFC3339, now); err != nil {
					return withCode(exitUsage, fmt.Errorf("--now: %w", err))
				}
			}
			if err := cfg.Validate(); err != nil {
				return withCode(exitUsage, err)
			}
			ctx := cmd.Context()
			sf.create = true
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			start := time.Now()
			col, err := gen.Generate(ctx, store, cfg)
			if err != nil {
				return withCode(storageCode(err), err)
			}
			elapsed := time.Since(start)
			plans, err := writePlans(planDir, col)
			if err != nil {
				return err
			}
			return printGenSummary(cmd, store.String(), col, plans, elapsed, asJSON)
		},
	}
	sf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.IntVar(&cfg.Segments, "segments", cfg.Segments, "number of L1 segments")
	fs.IntVar(&cfg.RowsPerSegment, "rows", cfg.RowsPerSegment, "rows per segment")
	fs.IntVar(&cfg.ChunkRows, "chunk-rows", cfg.ChunkRows, "rows per insert binlog chunk (0: one chunk per segment)")
	fs.IntVar(&cfg.Dim, "dim", cfg.Dim, "FloatVector dimension")
	fs.StringVar(&pkType, "pk", "int64", "primary key type: int64 or varchar")
	fs.BoolVar(&cfg.Sorted, "sorted", cfg.Sorted, "sort each segment by primary key (is_sorted)")
	fs.Float64Var(&cfg.DeleteFraction, "delete-fraction", cfg.DeleteFraction, "fraction of each segment's rows deleted by its deltalog")
	fs.StringVar(&deletes, "deletes", "uniform", "where deleted rows sit: uniform or clustered")
	fs.Float64Var(&cfg.ExpiredFraction, "expired-fraction", cfg.ExpiredFraction, "fraction of rows older than the TTL")
	fs.DurationVar(&cfg.TTL, "ttl", cfg.TTL, "collection TTL (0 disables expiry)")
	fs.IntVar(&cfg.L0Segments, "l0-segments", cfg.L0Segments, "L0 segments for the L0 plan (0: no L0 plan)")
	fs.IntVar(&cfg.L0Deletes, "l0-deletes", cfg.L0Deletes, "delete records per L0 segment")
	fs.Int64Var(&cfg.MaxSegmentSize, "max-size", cfg.MaxSegmentSize, "the mix plan's max output segment size in bytes")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; the same flags write the same bytes")
	fs.StringVar(&now, "now", "", "the plans' start time, RFC 3339 (default "+cfg.Now.Format(time.RFC3339)+")")
	fs.StringVar(&planDir, "plans", "./plans", "directory for mix-plan.json and l0-plan.json")
	fs.Int64Var(&cfg.StorageVersion, "storage-version", cfg.StorageVersion, "insert data format: 0 or 1 (storage v1), 2 (Milvus 2.6 storage v2, column-group Parquet files)")
	fs.BoolVar(&cfg.MixedVersions, "mixed-versions", cfg.MixedVersions, "with --storage-version 2, write every other segment (2nd, 4th, ...) in storage v1")
	fs.BoolVar(&cfg.BM25, "bm25", cfg.BM25, "add a BM25 function (text field, sparse output) and BM25 stats logs")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fs.StringVar(&cfg.RootPath, "root-path", cfg.RootPath, "Milvus rootPath: the prefix of every log key in the store (see --storage)")
	runTwins.describe(fs)
	return cmd
}

func parsePKType(s string) (schemapb.DataType, error) {
	switch s {
	case "int64", "Int64":
		return schemapb.DataType_Int64, nil
	case "varchar", "VarChar":
		return schemapb.DataType_VarChar, nil
	}
	return 0, fmt.Errorf("--pk must be int64 or varchar, got %q", s)
}

func writePlans(dir string, col *gen.Collection) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, withCode(exitFailure, fmt.Errorf("create plan directory: %w", err))
	}
	out := map[string]string{}
	m := protojson.MarshalOptions{Multiline: true, Indent: "  "}
	write := func(name string, msg proto.Message) error {
		b, err := m.Marshal(msg)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return withCode(exitFailure, fmt.Errorf("write plan: %w", err))
		}
		out[name] = p
		return nil
	}
	if err := write("mix-plan.json", col.MixPlan); err != nil {
		return nil, err
	}
	if col.L0Plan != nil {
		if err := write("l0-plan.json", col.L0Plan); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func printGenSummary(cmd *cobra.Command, store string, col *gen.Collection, plans map[string]string, elapsed time.Duration, asJSON bool) error {
	e := col.Expected
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"storage": store, "segments": len(col.Segments), "l0_segments": len(col.L0),
			"storage_version": col.Config.StorageVersion, "mixed_versions": col.Config.MixedVersions,
			"rows": e.Rows, "deleted": e.Deleted, "expired": e.Expired, "kept": e.Kept,
			"input_memory_bytes": col.InputMemorySize, "input_log_bytes": col.InputLogSize,
			"plans": plans, "seconds": elapsed.Seconds(),
		})
	}
	version := "storage v1"
	switch {
	case col.Config.MixedVersions:
		version = "storage v2 and v1, alternating"
	case col.Config.StorageVersion == 2:
		version = "storage v2"
	}
	fmt.Fprintf(out, "wrote %d segments in %s (%d rows, %.1f MiB uncompressed, %.1f MiB on storage) and %d L0 segments to %s in %s\n",
		len(col.Segments), version, e.Rows, mib(col.InputMemorySize), mib(col.InputLogSize), len(col.L0), store, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "a correct mix compaction keeps %d rows, drops %d deleted and %d expired\n", e.Kept, e.Deleted, e.Expired)
	for _, name := range []string{"mix-plan.json", "l0-plan.json"} {
		if p, ok := plans[name]; ok {
			fmt.Fprintf(out, "plan: %s\n", p)
		}
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
