package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/compacthost/compacthost/host/internal/pipeline"
)

// PluginID names one strategy binary: name@version from its file name and
// the sha256 of its bytes.
type PluginID struct {
	Name    string
	Version string
	SHA256  string // lowercase hex
}

// String returns "name@version (sha256 1a2b3c4d5e6f)".
func (id PluginID) String() string {
	s := id.Name + "@" + id.Version
	if id.SHA256 != "" {
		s += " (sha256 " + id.ShortSHA() + ")"
	}
	return s
}

// Ref returns "name@version".
func (id PluginID) Ref() string { return id.Name + "@" + id.Version }

// ShortSHA returns the first 12 hex digits of the sha256.
func (id PluginID) ShortSHA() string {
	if len(id.SHA256) > 12 {
		return id.SHA256[:12]
	}
	return id.SHA256
}

// Error kinds. Every error the host returns for a plugin matches exactly
// one of these with errors.Is.
var (
	// ErrRefused: the module failed admission (see AdmissionError.Rule).
	ErrRefused = errors.New("plugin refused at admission")
	// ErrTrap: the guest trapped (unreachable, out-of-bounds access, ...).
	ErrTrap = errors.New("wasm trap")
	// ErrOutOfMemory: the guest ran out of its memory grant, either
	// reported by the guest (status OUT_OF_MEMORY) or by the Go runtime
	// dying with "out of memory" after the allocator refused a grow.
	ErrOutOfMemory = errors.New("out of memory against the grant")
	// ErrGuestFailed: the guest returned an error status with a message
	// (the SDK reports recovered panics this way).
	ErrGuestFailed = errors.New("strategy failed")
	// ErrPanic: the guest's runtime died from an unrecovered panic.
	ErrPanic = errors.New("strategy panicked")
	// ErrDeadline: the task deadline passed or its context was cancelled.
	ErrDeadline = errors.New("deadline exceeded")
	// ErrABIMisuse: the guest broke the ABI contract (bad pointers or
	// lengths in host calls, bad alloc results, malformed decisions,
	// counters that do not match the rows it dropped).
	ErrABIMisuse = pipeline.ErrABIMisuse
	// ErrExit: the guest exited with a non-zero code for another reason.
	ErrExit = errors.New("guest exited")
	// ErrClosed: the instance was already discarded after an earlier failure
	// or Close.
	ErrClosed = errors.New("instance closed")
)

// AdmissionError is returned when a module breaks an admission rule.
type AdmissionError struct {
	Plugin PluginID
	Rule   string // one of the admission rule names, e.g. "import-allowlist"
	Detail string
}

func (e *AdmissionError) Error() string {
	return fmt.Sprintf("plugin %s refused (rule %s): %s", e.Plugin, e.Rule, e.Detail)
}

// Is reports true for ErrRefused.
func (e *AdmissionError) Is(target error) bool { return target == ErrRefused }

// TaskError is returned when a running instance fails. The instance is
// closed and must not be used again.
type TaskError struct {
	Plugin  PluginID
	Op      string // the guest export being called, e.g. "compact_v1_batch"
	Kind    error  // one of the Err* kinds
	Message string // guest message (fail), panic text, trap text
	Stack   string // wasm stack trace for traps, if any
	Stderr  string // head of the guest's captured stdout/stderr, if any
	Err     error  // underlying wazero error, if any
}

func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s: %s: %v", e.Plugin, e.Op, e.Kind)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Stack != "" {
		b.WriteString("\n")
		b.WriteString(e.Stack)
	}
	return b.String()
}

// Is matches the error's Kind.
func (e *TaskError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying wazero error.
func (e *TaskError) Unwrap() error { return e.Err }
