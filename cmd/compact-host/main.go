// Command compact-host runs Milvus segment compaction with strategies loaded as sandboxed
// WebAssembly modules. See README.md at the repository root.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code.
func run(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "compact-host: %v\n", err)
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	// cobra reports an unknown subcommand as a plain error.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return exitUsage
	}
	return exitFailure
}
