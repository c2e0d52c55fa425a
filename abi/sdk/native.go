//go:build !wasip1

package sdk

import (
	"sync"

	"github.com/compacthost/compacthost/abi"
)

// Host is what a natively driven strategy talks to: the counterpart of the
// compact_v1 emit and probe imports. Buffers are valid only during the call.
type Host interface {
	// Emit receives encoded decision records of one kind.
	Emit(kind abi.EmitKind, buf []byte) abi.Status
	// Probe receives encoded L0Pair records and sets one bit per pair in
	// hits; see Emitter.Probe.
	Probe(pairs, hits []byte) abi.Status
}

// Driver runs a Strategy natively from the same encoded bytes the wasm host
// sends: a task JSON, deletes batches, rows batches. Errors it returns are
// *abi.Error values with the status and message a wasm build would have
// returned and passed to fail. A Driver is not safe for concurrent use;
// run one per goroutine.
type Driver struct {
	r *runner
}

type nativeHost struct{ h Host }

func (n nativeHost) emit(kind abi.EmitKind, buf []byte) abi.Status { return n.h.Emit(kind, buf) }
func (n nativeHost) probe(pairs, hits []byte) abi.Status           { return n.h.Probe(pairs, hits) }

// NewDriver validates the strategy's manifest and returns a driver that
// reports decisions to h.
func NewDriver(s Strategy, h Host) (*Driver, error) {
	r, err := newRunner(s, nativeHost{h})
	if err != nil {
		return nil, err
	}
	return &Driver{r: r}, nil
}

// Manifest returns the validated manifest.
func (d *Driver) Manifest() Manifest { return d.r.manifest }

// ManifestJSON returns the manifest as compact_v1_manifest would.
func (d *Driver) ManifestJSON() []byte { return d.r.mjson }

// Begin starts a task (compact_v1_begin). Natively the memory grant is not
// enforced.
func (d *Driver) Begin(task []byte) error { return d.r.begin(task) }

// Deletes delivers a deletes batch (compact_v1_deletes).
func (d *Driver) Deletes(buf []byte) error { return d.r.deletes(buf) }

// Batch delivers a rows batch (compact_v1_batch).
func (d *Driver) Batch(buf []byte) error { return d.r.batchCall(buf) }

// Finish ends the task (compact_v1_finish).
func (d *Driver) Finish() error { return d.r.finish() }

// Collector is a Host that decodes and keeps every decision, for tests and
// native runs. ProbeFunc, if set, answers probes; without it probes return
// StatusUnsupported.
type Collector struct {
	abi.Decisions
	ProbeFunc func(pairs []abi.L0Pair, hits []byte) error
	Err       error // the first decode error, if the strategy sent malformed records
}

// Emit implements Host.
func (c *Collector) Emit(kind abi.EmitKind, buf []byte) abi.Status {
	if err := c.Decisions.Add(kind, buf); err != nil {
		if c.Err == nil {
			c.Err = err
		}
		return abi.StatusBadInput
	}
	return abi.StatusOK
}

// Probe implements Host.
func (c *Collector) Probe(pairs, hits []byte) abi.Status {
	if c.ProbeFunc == nil {
		return abi.StatusUnsupported
	}
	ps, err := abi.DecodeL0Pairs(nil, pairs)
	if err == nil {
		clear(hits) // the wasm host writes the whole bitmap; a ProbeFunc may only set bits
		err = c.ProbeFunc(ps, hits)
	}
	if err != nil {
		if c.Err == nil {
			c.Err = err
		}
		return abi.StatusBadInput
	}
	return abi.StatusOK
}

// RunTask drives s through one whole task natively and returns what it decided.
func RunTask(s Strategy, task []byte, deletes, batches [][]byte) (*Collector, error) {
	c := new(Collector)
	d, err := NewDriver(s, c)
	if err != nil {
		return nil, err
	}
	if err := d.Begin(task); err != nil {
		return c, err
	}
	for _, b := range deletes {
		if err := d.Deletes(b); err != nil {
			return c, err
		}
	}
	for _, b := range batches {
		if err := d.Batch(b); err != nil {
			return c, err
		}
	}
	return c, d.Finish()
}

// Natively there is no grant to enforce: the process is the host's.
func applyGrant(uint64) error { return nil }

// CheckMemory always succeeds natively; in a wasm build it reports when n
// more bytes would not fit in the task's memory grant.
func CheckMemory(n uint64) error { return nil }

var (
	nativeLogMu sync.Mutex
	nativeLog   func(abi.LogLevel, string)
)

// SetNativeLogger routes Logf of natively run strategies (process-wide) to
// f; nil discards. In wasm builds Logf goes to the host's log import.
func SetNativeLogger(f func(level abi.LogLevel, msg string)) {
	nativeLogMu.Lock()
	nativeLog = f
	nativeLogMu.Unlock()
}

func logf(level abi.LogLevel, msg string) {
	nativeLogMu.Lock()
	f := nativeLog
	nativeLogMu.Unlock()
	if f != nil {
		f(level, msg)
	}
}
