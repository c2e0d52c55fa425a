// Package abi holds the version-1 contract between the compaction host and a
// WebAssembly compaction strategy: the names of imports and exports, status
// codes, the manifest and task JSON documents, and the binary encodings of
// row batches, delete batches and decisions. ABI.md in this directory is the
// normative specification; this package is its Go implementation, shared by
// the host (which encodes batches and decodes decisions) and the guest SDK
// (which decodes batches and encodes decisions).
//
// Every decoder in this package treats its input as untrusted: all lengths and
// offsets are bounds-checked and a malformed buffer yields an error, never a
// panic. The package has no dependencies beyond the standard library so that
// it can be linked into small guest modules.
package abi

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is the ABI version this package implements.
const Version = 1

// Names of the host module and the guest exports. Both carry the version, so
// a module built against another version fails admission by name alone.
const (
	// ModuleName is the import module under which the host provides its
	// functions (emit, log, fail, probe).
	ModuleName = "compact_v1"
	// ExportPrefix prefixes every required guest export.
	ExportPrefix = "compact_v1_"

	ExportAlloc    = "compact_v1_alloc"    // (size i32) -> ptr i32
	ExportManifest = "compact_v1_manifest" // () -> i64 (ptr<<32 | len)
	ExportBegin    = "compact_v1_begin"    // (ptr i32, len i32) -> status i32
	ExportDeletes  = "compact_v1_deletes"  // (ptr i32, len i32) -> status i32
	ExportBatch    = "compact_v1_batch"    // (ptr i32, len i32) -> status i32
	ExportFinish   = "compact_v1_finish"   // () -> status i32

	// ExportInitialize is the reactor initialisation function the host calls
	// once, before any other export (Go and TinyGo c-shared builds, wasi-libc
	// reactors).
	ExportInitialize = "_initialize"

	ImportEmit  = "emit"  // (kind i32, ptr i32, len i32) -> status i32
	ImportLog   = "log"   // (level i32, ptr i32, len i32)
	ImportFail  = "fail"  // (code i32, ptr i32, len i32)
	ImportProbe = "probe" // (ptr i32, len i32, out_ptr i32) -> status i32

	// WASIModule is the WASI import module a guest may use, limited to the
	// functions in AllowedWASIImports.
	WASIModule = "wasi_snapshot_preview1"
)

// RequiredExports lists the exports every v1 strategy must provide, besides
// a memory named "memory".
var RequiredExports = []string{ExportAlloc, ExportManifest, ExportBegin, ExportDeletes, ExportBatch, ExportFinish}

// AllowedWASIImports lists the wasi_snapshot_preview1 functions a v1 guest
// may import: what the Go wasip1 runtime links (plus fd_read), nothing that
// opens files or sockets. The host instantiates WASI with no preopened
// directories, no arguments, a deterministic clock and random source unless
// configured otherwise, and only GOMEMLIMIT (and optionally GOGC) in the
// environment, so the filesystem-shaped calls in this list find nothing.
var AllowedWASIImports = []string{
	"args_get", "args_sizes_get",
	"environ_get", "environ_sizes_get",
	"clock_res_get", "clock_time_get",
	"fd_close", "fd_fdstat_get", "fd_fdstat_set_flags",
	"fd_prestat_get", "fd_prestat_dir_name",
	"fd_read", "fd_write",
	"poll_oneoff", "proc_exit", "random_get", "sched_yield",
}

// Limits the host applies to guest messages (ABI.md, "Logging and failure
// messages"). Longer messages are truncated, not refused.
const (
	MaxLogMessage  = 1024
	MaxFailMessage = 4096
)

// Status is the i32 result of compact_v1_begin/deletes/batch/finish and of the
// host imports emit and probe.
type Status uint32

// Status codes.
const (
	StatusOK          Status = 0 // success
	StatusError       Status = 1 // strategy error; the message was passed to fail
	StatusOutOfMemory Status = 2 // the work would not fit in the memory grant
	StatusBadInput    Status = 3 // a buffer was malformed or a call came out of order
	StatusUnsupported Status = 4 // compaction type, field or option not handled
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusError:
		return "ERROR"
	case StatusOutOfMemory:
		return "OUT_OF_MEMORY"
	case StatusBadInput:
		return "BAD_INPUT"
	case StatusUnsupported:
		return "UNSUPPORTED"
	}
	return "STATUS(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error is an error that carries an ABI status code. The guest SDK turns
// it into the export's return value plus a fail message; the host can build
// one from the (status, message) pair it received.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Status.String()
	}
	return e.Status.String() + ": " + e.Message
}

// Errorf returns an *Error with a formatted message.
func Errorf(s Status, format string, args ...any) error {
	return &Error{Status: s, Message: fmt.Sprintf(format, args...)}
}

// EmitKind is the first argument of the emit import: which decision records
// the buffer holds.
type EmitKind uint32

// Decision kinds.
const (
	EmitRuns     EmitKind = 1 // mix: Run records (16 bytes each)
	EmitL0       EmitKind = 2 // L0: L0Pair records (8 bytes each)
	EmitCounters EmitKind = 3 // Counter records (16 bytes each)
)

func (k EmitKind) String() string {
	switch k {
	case EmitRuns:
		return "runs"
	case EmitL0:
		return "l0"
	case EmitCounters:
		return "counters"
	}
	return "kind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// LogLevel is the first argument of the log import. Values above LogError
// are treated as LogError.
type LogLevel uint32

// Log levels.
const (
	LogTrace LogLevel = 0
	LogDebug LogLevel = 1
	LogInfo  LogLevel = 2
	LogWarn  LogLevel = 3
	LogError LogLevel = 4
)

// ParseVersionedName reports the ABI version named by an import module
// ("compact_vN") or an export ("compact_vN_..."). ok is false when name does
// not follow the compact_vN pattern at all; a host refuses a module for which
// ok is true and version != Version.
func ParseVersionedName(name string) (version int, ok bool) {
	rest, found := strings.CutPrefix(name, "compact_v")
	if !found {
		return 0, false
	}
	digits := rest
	if i := strings.IndexByte(rest, '_'); i >= 0 {
		digits = rest[:i]
	}
	if digits == "" || len(digits) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
