package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of compact-host and of the libraries it is built with",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "compact-host %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, m := range info.Deps {
					switch m.Path {
					case "github.com/tetratelabs/wazero", "github.com/apache/arrow-go/v18",
						"github.com/minio/minio-go/v7", "github.com/milvus-io/milvus-proto/go-api/v2":
						fmt.Fprintf(out, "  %s %s\n", m.Path, m.Version)
					}
				}
			}
			return nil
		},
	}
}
