package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "compact-host",
		Short: "Run Milvus segment compaction with sandboxed WebAssembly strategies",
		Long: `compact-host reads Milvus segments (insert binlogs, deltalogs, stats logs) from a local
directory or an S3/MinIO bucket, runs a compaction strategy compiled to WebAssembly over them, and
writes the compacted segments back in Milvus's own format.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	root.AddCommand(newGenCommand(), newInspectCommand(), newVersionCommand())
	return root
}
