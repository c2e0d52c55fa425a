package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"unsafe"

	"github.com/compacthost/compacthost/abi"
)

// hostCalls is what the runner needs from the host: the emit and probe
// imports in wasm, a Host implementation natively.
type hostCalls interface {
	emit(kind abi.EmitKind, buf []byte) abi.Status
	probe(pairs, hits []byte) abi.Status
}

type phase uint8

const (
	phaseIdle    phase = iota // no task: Begin expected
	phaseDeletes              // after Begin: deletes or batches or finish
	phaseRows                 // after the first batch: batches or finish
	phaseFailed               // a call failed; the instance must be discarded
)

// runner is the platform-independent core behind the wasm exports and the
// native Driver: it enforces the call order, decodes buffers, calls the
// strategy and turns errors and panics into (status, message).
type runner struct {
	s        Strategy
	host     hostCalls
	manifest Manifest
	mjson    []byte
	task     *Task
	phase    phase
	failure  string
	rowsSeen []uint64 // per segment, rows delivered so far
	delsSeen []uint64 // per segment, deletes delivered so far
	nextDel  uint64   // global index of the next delete record
	batch    abi.Batch
	dels     abi.Deletes
	em       emitter
}

func newRunner(s Strategy, h hostCalls) (*runner, error) {
	r := &runner{s: s, host: h}
	r.em.r = r
	r.manifest = s.Manifest()
	if r.manifest.ABI == 0 {
		r.manifest.ABI = abi.Version
	}
	if err := r.manifest.Validate(); err != nil {
		return nil, err
	}
	var err error
	if r.mjson, err = json.Marshal(r.manifest); err != nil {
		return nil, fmt.Errorf("sdk: manifest of %s: %w", r.manifest.Name, err)
	}
	return r, nil
}

// call runs f with the phase checks and error mapping shared by every
// entry point. A failure moves the runner to phaseFailed.
func (r *runner) call(op string, f func() error) (err error) {
	if r.phase == phaseFailed {
		return abi.Errorf(abi.StatusError, "%s: strategy %s failed earlier (%s); discard this instance", op, r.manifest.Name, r.failure)
	}
	defer func() {
		if p := recover(); p != nil {
			err = abi.Errorf(abi.StatusError, "panic in %s of strategy %s: %v\n%s", op, r.manifest.Name, p, debug.Stack())
		}
		if err != nil {
			var ae *abi.Error
			if !errors.As(err, &ae) {
				ae = &abi.Error{Status: abi.StatusError, Message: err.Error()}
			}
			if ae.Status == abi.StatusOK {
				ae = &abi.Error{Status: abi.StatusError, Message: ae.Message}
			}
			if len(ae.Message) > abi.MaxFailMessage {
				ae = &abi.Error{Status: ae.Status, Message: ae.Message[:abi.MaxFailMessage]}
			}
			r.phase, r.failure = phaseFailed, ae.Status.String()
			err = ae
		}
	}()
	return f()
}

func (r *runner) begin(buf []byte) error {
	return r.call(abi.ExportBegin, func() error {
		if r.phase != phaseIdle {
			return abi.Errorf(abi.StatusBadInput, "begin: a task is already running (call finish first)")
		}
		t, err := abi.ParseTask(buf)
		if err != nil {
			return abi.Errorf(abi.StatusBadInput, "begin: %v", err)
		}
		if !r.manifest.HandlesType(t.Type) {
			return abi.Errorf(abi.StatusUnsupported, "strategy %s does not handle %q compaction (handles %v)", r.manifest.Name, t.Type, r.manifest.Handles)
		}
		if err := applyGrant(t.MemoryGrant); err != nil {
			return err
		}
		r.task = t
		r.rowsSeen = make([]uint64, len(t.Segments))
		r.delsSeen = make([]uint64, len(t.Segments))
		r.nextDel = 0
		r.phase = phaseDeletes
		return r.s.Begin(t)
	})
}

func (r *runner) deletes(buf []byte) error {
	return r.call(abi.ExportDeletes, func() error {
		if r.phase != phaseDeletes {
			return abi.Errorf(abi.StatusBadInput, "deletes: %s", r.orderError())
		}
		if err := r.dels.Reset(buf); err != nil {
			return abi.Errorf(abi.StatusBadInput, "deletes: %v", err)
		}
		d, t := &r.dels, r.task
		if int(d.Segment) >= len(t.Segments) {
			return abi.Errorf(abi.StatusBadInput, "deletes: segment %d, task has %d", d.Segment, len(t.Segments))
		}
		if d.FirstRow != r.nextDel {
			return abi.Errorf(abi.StatusBadInput, "deletes: batch starts at delete %d, expected %d", d.FirstRow, r.nextDel)
		}
		if d.PKs().Type != t.PKType {
			return abi.Errorf(abi.StatusBadInput, "deletes: pk column is %s, task pk_type is %s", d.PKs().Type, t.PKType)
		}
		seg := &t.Segments[d.Segment]
		if r.delsSeen[d.Segment]+uint64(d.Rows) > seg.Deletes {
			return abi.Errorf(abi.StatusBadInput, "deletes: segment %d (id %d) announced %d deletes, got %d", d.Segment, seg.ID, seg.Deletes, r.delsSeen[d.Segment]+uint64(d.Rows))
		}
		r.delsSeen[d.Segment] += uint64(d.Rows)
		r.nextDel += uint64(d.Rows)
		if de, ok := r.s.(DeletesEmitter); ok {
			return de.DeletesTo(d, &r.em)
		}
		return r.s.Deletes(d)
	})
}

func (r *runner) batchCall(buf []byte) error {
	return r.call(abi.ExportBatch, func() error {
		if r.phase != phaseDeletes && r.phase != phaseRows {
			return abi.Errorf(abi.StatusBadInput, "batch: %s", r.orderError())
		}
		r.phase = phaseRows
		b, t := &r.batch, r.task
		if err := b.Reset(buf); err != nil {
			return abi.Errorf(abi.StatusBadInput, "batch: %v", err)
		}
		if b.Kind != abi.BatchRows {
			return abi.Errorf(abi.StatusBadInput, "batch: got a %s batch", b.Kind)
		}
		if int(b.Segment) >= len(t.Segments) || t.Segments[b.Segment].Role != abi.RoleInput {
			return abi.Errorf(abi.StatusBadInput, "batch: segment %d is not an input segment of the task", b.Segment)
		}
		seg := &t.Segments[b.Segment]
		if b.FirstRow != r.rowsSeen[b.Segment] || b.FirstRow+uint64(b.Rows) > seg.Rows {
			return abi.Errorf(abi.StatusBadInput, "batch: rows [%d, %d) of segment %d (id %d), expected to start at %d of %d", b.FirstRow, b.FirstRow+uint64(b.Rows), b.Segment, seg.ID, r.rowsSeen[b.Segment], seg.Rows)
		}
		if b.NumColumns() != len(t.Columns) {
			return abi.Errorf(abi.StatusBadInput, "batch: %d columns, task announced %d", b.NumColumns(), len(t.Columns))
		}
		for i, ci := range t.Columns {
			if c := b.Column(i); c.FieldID != ci.FieldID || c.Type != ci.Type {
				return abi.Errorf(abi.StatusBadInput, "batch: column %d is field %d (%s), task announced field %d (%s)", i, c.FieldID, c.Type, ci.FieldID, ci.Type)
			}
		}
		r.rowsSeen[b.Segment] += uint64(b.Rows)
		return r.s.Batch(b, &r.em)
	})
}

func (r *runner) finish() error {
	return r.call(abi.ExportFinish, func() error {
		if r.phase != phaseDeletes && r.phase != phaseRows {
			return abi.Errorf(abi.StatusBadInput, "finish: %s", r.orderError())
		}
		for i, s := range r.task.Segments {
			if s.Role == abi.RoleInput && r.rowsSeen[i] != s.Rows {
				return abi.Errorf(abi.StatusBadInput, "finish: segment %d (id %d) delivered %d of %d rows", i, s.ID, r.rowsSeen[i], s.Rows)
			}
			if r.delsSeen[i] != s.Deletes {
				return abi.Errorf(abi.StatusBadInput, "finish: segment %d (id %d) delivered %d of %d deletes", i, s.ID, r.delsSeen[i], s.Deletes)
			}
		}
		if err := r.s.Finish(&r.em); err != nil {
			return err
		}
		r.phase = phaseIdle
		return nil
	})
}

func (r *runner) orderError() string {
	switch r.phase {
	case phaseIdle:
		return "no task (call begin first)"
	case phaseRows:
		return "deletes must all come before the first batch"
	}
	return "out of order"
}

// emitter implements Emitter over the runner's host.
type emitter struct{ r *runner }

func (e *emitter) send(kind abi.EmitKind, buf []byte) error {
	if st := e.r.host.emit(kind, buf); st != abi.StatusOK {
		return abi.Errorf(st, "host refused %d bytes of %s decisions", len(buf), kind)
	}
	return nil
}

func (e *emitter) Runs(runs []Run) error {
	return e.send(abi.EmitRuns, wire(runs, abi.RunSize, abi.PutRuns))
}

func (e *emitter) L0(pairs []L0Pair) error {
	return e.send(abi.EmitL0, wire(pairs, abi.L0PairSize, abi.PutL0Pairs))
}

func (e *emitter) Counters(cs []Counter) error {
	return e.send(abi.EmitCounters, wire(cs, abi.CounterSize, abi.PutCounters))
}

func (e *emitter) Probe(pairs []L0Pair, hits []byte) error {
	if need := (len(pairs) + 7) / 8; len(hits) < need {
		return fmt.Errorf("sdk: probe of %d pairs needs %d bytes of hits, got %d", len(pairs), need, len(hits))
	}
	if len(pairs) == 0 {
		return nil
	}
	if st := e.r.host.probe(wire(pairs, abi.L0PairSize, abi.PutL0Pairs), hits[:(len(pairs)+7)/8]); st != abi.StatusOK {
		return abi.Errorf(st, "host refused a probe of %d pairs", len(pairs))
	}
	return nil
}

// littleEndian: decision records are little-endian u32 fields with no
// padding, so on little-endian machines (wasm, amd64, arm64) a slice of
// records already is its wire form and is sent without copying.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func wire[T Run | L0Pair | Counter](recs []T, size int, put func([]byte, []T) (int, error)) []byte {
	if len(recs) == 0 {
		return nil
	}
	if littleEndian && int(unsafe.Sizeof(recs[0])) == size {
		return unsafe.Slice((*byte)(unsafe.Pointer(&recs[0])), len(recs)*size)
	}
	buf := make([]byte, len(recs)*size)
	put(buf, recs)
	return buf
}
