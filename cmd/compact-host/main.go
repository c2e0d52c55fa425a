// Command compact-host runs Milvus segment compaction with strategies loaded as sandboxed
// WebAssembly modules. See README.md at the repository root.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
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
	msg := err.Error()
	if !debugRequested(args) {
		// One line for scripts and people; --debug shows the wasm stack and guest output.
		msg, _, _ = strings.Cut(msg, "\n")
	}
	fmt.Fprintf(os.Stderr, "compact-host: %s\n", msg)
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

// debugRequested reports whether --debug (or $COMPACT_HOST_DEBUG) is on, read the way the flag
// parses it.
func debugRequested(args []string) bool {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--debug"); ok && (v == "" || v[0] == '=') {
			on, err := strconv.ParseBool(strings.TrimPrefix(v, "="))
			return v == "" || err == nil && on
		}
	}
	on, _ := strconv.ParseBool(os.Getenv("COMPACT_HOST_DEBUG"))
	return on
}
