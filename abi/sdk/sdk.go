// Package sdk is the guest SDK for compaction strategies written in Go.
//
// A strategy implements Strategy and registers it from its main package:
//
//	package main
//
//	import "github.com/compacthost/compacthost/abi/sdk"
//
//	func init() { sdk.Register(&evenPK{}) }
//
//	func main() {}
//
// Built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o strategy.wasm
//
// the package provides the compact_v1_* exports and imports the compact_v1
// host module (see abi/ABI.md): it decodes the host's batches into zero-copy
// views, encodes the strategy's decisions, sets the Go memory limit from the
// task's memory grant, turns errors and panics into status codes with a
// message, and forwards Logf to the host's log.
//
// Built natively, the same strategy runs under a Driver that is fed the same
// encoded bytes, so its logic is unit-tested and benchmarked without wasm.
// Package sdktest builds the wasm module in a test and runs tasks through
// it under wazero, to check that the build decides what the native one does.
package sdk

import (
	"github.com/compacthost/compacthost/abi"
)

// Aliases so strategy code needs only this package for the common types.
type (
	// Manifest is what a strategy declares about itself.
	Manifest = abi.Manifest
	// Task describes one compaction; it is valid until the next Begin.
	Task = abi.Task
	// Batch is a batch of rows of one input segment. Its views are valid
	// only during the Batch call that received it.
	Batch = abi.Batch
	// DeleteBatch is a batch of delete records. Its views are valid only
	// during the Deletes call that received it.
	DeleteBatch = abi.Deletes
	// Run, L0Pair and Counter are the decision records.
	Run     = abi.Run
	L0Pair  = abi.L0Pair
	Counter = abi.Counter
)

// Strategy is what a strategy author implements. The SDK calls, per task:
// Begin once, Deletes for every delete batch (all of them before the first
// row batch), Batch for every row batch, Finish once. Decisions may be
// emitted from Batch or Finish. After Finish returns, Begin may be called
// again for a new task on the same instance.
//
// A returned error fails the task: an *abi.Error carries its status (see
// Errorf), any other error becomes StatusError. A panic becomes StatusError
// with the panic value and stack as the message.
type Strategy interface {
	Manifest() Manifest
	Begin(t *Task) error
	Deletes(d *DeleteBatch) error
	Batch(b *Batch, out Emitter) error
	Finish(out Emitter) error
}

// DeletesEmitter is optional. A strategy that implements it gets DeletesTo
// instead of Deletes, with an Emitter, so it can probe and emit decisions
// while delete batches stream in (ABI.md section 4 allows decisions during
// deletes) instead of keeping every delete record until Finish.
type DeletesEmitter interface {
	DeletesTo(d *DeleteBatch, out Emitter) error
}

// Emitter sends decisions (and probe requests) to the host. Each call
// crosses into the host once; the host copies the records before returning,
// so the slices may be reused right away. Batch many records per call.
type Emitter interface {
	// Runs emits mix decisions, in output order.
	Runs(runs []Run) error
	// L0 emits L0 routing decisions.
	L0(pairs []L0Pair) error
	// Counters reports dropped rows; the host sums them per segment. Count
	// every row no run covers exactly once: Deleted for a newer delete of
	// its pk in its segment, Expired for the collection TTL, Other for any
	// reason of the strategy's own. When the task ends the host fails it
	// as ABI misuse if the sums do not match the dropped rows (ABI.md
	// section 9.5).
	Counters(cs []Counter) error
	// Probe asks the host whether the bloom filter of each pair's target
	// may contain the pair's delete pk; the host sets bit i (LSB first) of
	// hits for a possible hit. hits needs at least (len(pairs)+7)/8 bytes.
	Probe(pairs []L0Pair, hits []byte) error
}

// Errorf returns an error carrying an ABI status, e.g.
// sdk.Errorf(abi.StatusUnsupported, "field %d has type %s", id, t).
func Errorf(s abi.Status, format string, args ...any) error {
	return abi.Errorf(s, format, args...)
}

var registered Strategy

// Register installs the strategy the compact_v1 exports drive. Call it once,
// from an init function of the main package.
func Register(s Strategy) {
	if registered != nil {
		panic("sdk: Register called twice")
	}
	if s == nil {
		panic("sdk: Register(nil)")
	}
	registered = s
}
