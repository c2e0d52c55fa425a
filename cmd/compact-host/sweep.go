package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/storage/objstore"
)

func newSweepCommand() *cobra.Command {
	var (
		sf      storageFlags
		plan    string
		results []string
		root    string
		del     bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "sweep --plan plan.json [--result result.json ...] [--delete]",
		Short: "List (and with --delete remove) what a crashed task left under a plan's output IDs",
		Long: `sweep finds the objects a compaction task may have left behind when it died before its
result was committed (kill -9, a lost node, an object store outage during cleanup): log objects
(insert, stats, BM25 stats and deltalogs) of the plan's collection and partitions whose segment ID
is in the plan's pre_allocated_segmentIDs, or whose log ID is in its pre_allocated_logIDs. It
never lists an object the plan reads or one a --result lists (give every committed result of the
plan). Without --delete it only prints them: one key per line on stdout, a count on stderr.
With --delete it removes exactly those and prints the keys it removed.`,
		Example: `  compact-host sweep --storage ./compact-data --plan plans/mix-plan.json
  compact-host sweep --storage s3://milvus/files --endpoint 127.0.0.1:9000 --insecure \
      --plan plan.json --result result.json --delete`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if plan == "" {
				return withCode(exitUsage, errors.New("sweep needs --plan"))
			}
			p, err := readMessage(plan, "plan", host.DecodePlan)
			if err != nil {
				return err
			}
			opts := host.SweepOptions{RootPath: root}
			for _, r := range results {
				res, err := readMessage(r, "result", host.DecodeResult)
				if err != nil {
					return err
				}
				opts.Results = append(opts.Results, res)
			}
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			find := host.FindOrphans
			if del {
				find = host.Sweep
			}
			objs, err := find(ctx, store, p, opts)
			if err == nil || len(objs) > 0 {
				// Sweep reports what it deleted before a failed delete.
				printSweep(cmd, p.GetPlanID(), objs, del, asJSON)
			}
			if err != nil {
				return withCode(sweepCode(err), err)
			}
			return nil
		},
	}
	sf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&plan, "plan", "", "the compaction plan whose outputs to sweep (protojson or binary protobuf)")
	fs.StringArrayVar(&results, "result", nil, "a committed result of the plan (CompactionPlanResult, protojson or binary); its objects are kept; repeat for several")
	fs.StringVar(&root, "root-path", host.DefaultRootPath, "Milvus rootPath: the prefix of every log key in the store (see --storage)")
	fs.BoolVar(&del, "delete", false, "delete the objects listed (default: only list them)")
	fs.BoolVar(&asJSON, "json", false, `print {"plan_id", "deleted", "objects": [{"key", "size"}]} instead of one key per line`)
	runTwins.describe(fs)
	return cmd
}

// readMessage reads and decodes a plan or result file.
func readMessage[M any](path, what string, decode func([]byte) (M, error)) (M, error) {
	var zero M
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, withCode(fileCode(err), fmt.Errorf("read %s: %w", what, err))
	}
	m, err := decode(b)
	if err != nil {
		return zero, withCode(exitBadInput, fmt.Errorf("%s %s: %w", what, path, err))
	}
	return m, nil
}

// printSweep prints the objects listed or deleted: keys on stdout and a count on stderr, or JSON.
func printSweep(cmd *cobra.Command, planID int64, objs []objstore.ObjectInfo, deleted, asJSON bool) {
	out := cmd.OutOrStdout()
	var bytes int64
	for _, o := range objs {
		bytes += o.Size
	}
	if asJSON {
		type object struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		}
		rep := struct {
			PlanID  int64    `json:"plan_id"`
			Deleted bool     `json:"deleted"`
			Objects []object `json:"objects"`
		}{PlanID: planID, Deleted: deleted, Objects: []object{}}
		for _, o := range objs {
			rep.Objects = append(rep.Objects, object{o.Key, o.Size})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	for _, o := range objs {
		fmt.Fprintln(out, o.Key)
	}
	verb := "orphan object(s) found"
	if deleted {
		verb = "orphan object(s) deleted"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "sweep: plan %d: %d %s, %d bytes\n", planID, len(objs), verb, bytes)
}

// sweepCode maps a sweep failure to an exit code.
func sweepCode(err error) int {
	switch {
	case errors.Is(err, host.ErrInvalidPlan):
		return exitBadInput
	case objstore.IsStoreError(err):
		return storageCode(err)
	}
	return exitBadInput // a result that does not belong to the plan or names no object
}
