package sdk

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
)

// Logf sends a log line to the host (its hclog logger, under the plugin's
// name). Lines are truncated to abi.MaxLogMessage bytes and the host
// rate-limits them, so log per batch or per task, not per row.
func Logf(level abi.LogLevel, format string, args ...any) {
	logf(level, fmt.Sprintf(format, args...))
}
