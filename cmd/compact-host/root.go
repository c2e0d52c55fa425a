package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "compact-host",
		Short: "Run Milvus segment compaction with sandboxed WebAssembly strategies",
		Long: `compact-host reads Milvus segments (insert binlogs, deltalogs, stats logs) from a local
directory or an S3/MinIO bucket, runs a compaction strategy compiled to WebAssembly over them, and
writes the compacted segments back in Milvus's own format.`,
		Example: `  compact-host --plugin mix.wasm --plan plans/mix-plan.json --storage ./compact-data
  compact-host --plugin l0.wasm --plan l0-plan.json --storage s3://bucket/files --endpoint 127.0.0.1:9000 --insecure`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var rf runFlags
	rf.register(root)
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return withCode(exitUsage, fmt.Errorf("unknown command %q (see compact-host --help)", args[0]))
		}
		return nil
	}
	// Every command reads its flags' environment variables here; a malformed one is a usage
	// error, as the flag would be. Then --storage and --root-path settle who names the rootPath.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		fs := cmd.Flags()
		for _, twins := range []envTwins{storageTwins, runTwins, pluginTwins} {
			if err := twins.apply(fs); err != nil {
				return err
			}
		}
		if err := splitRootPath(fs); err != nil {
			return withCode(exitUsage, err)
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if rf.plugin == "" && rf.plan == "" {
			return cmd.Help()
		}
		return runPlan(cmd, &rf)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	root.AddCommand(newGenCommand(), newInspectCommand(), newServeCommand(), newVersionCommand(), newPluginCommand(), newSweepCommand())
	return root
}
