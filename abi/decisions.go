package abi

import (
	"encoding/binary"
	"fmt"
)

// Run is a mix decision (EmitRuns): rows [FirstRow, FirstRow+Count) of input
// segment Segment go, in this order, to output Output. Runs are applied in
// the order they are emitted; the rows of one output appear in that order.
// Wire form: four little-endian u32 in field order (16 bytes).
type Run struct {
	Segment  uint32
	FirstRow uint32
	Count    uint32
	Output   uint32
}

// L0Pair is an L0 decision (EmitL0) and a probe request: delete record
// Delete (global delete index) is routed to segment Target (an index into
// Task.Segments). Wire form: two little-endian u32 (8 bytes).
type L0Pair struct {
	Delete uint32
	Target uint32
}

// Counter reports rows a strategy dropped (EmitCounters); the host sums all
// counters of a task per segment and checks the sums against the rows no
// run covered (ABI.md section 9.5). Wire form: four little-endian u32 (16
// bytes) in field order.
type Counter struct {
	Segment uint32
	Deleted uint32 // rows dropped because a delete record hit them
	Expired uint32 // rows dropped because the collection TTL expired them
	// Other counts rows dropped for any other reason. The word was
	// reserved and zero before; a strategy that leaves it 0 is unchanged.
	Other uint32
}

// Record sizes on the wire.
const (
	RunSize     = 16
	L0PairSize  = 8
	CounterSize = 16
)

// RecordSize returns the wire size of one record of kind k, or 0 for an
// unknown kind.
func RecordSize(k EmitKind) int {
	switch k {
	case EmitRuns:
		return RunSize
	case EmitL0:
		return L0PairSize
	case EmitCounters:
		return CounterSize
	}
	return 0
}

// PutRuns encodes runs into dst (at least len(runs)*RunSize bytes) and
// returns the bytes written.
func PutRuns(dst []byte, runs []Run) (int, error) {
	n := len(runs) * RunSize
	if len(dst) < n {
		return 0, fmt.Errorf("abi: %d runs need %d bytes, destination has %d", len(runs), n, len(dst))
	}
	for i, r := range runs {
		b := dst[i*RunSize:]
		binary.LittleEndian.PutUint32(b, r.Segment)
		binary.LittleEndian.PutUint32(b[4:], r.FirstRow)
		binary.LittleEndian.PutUint32(b[8:], r.Count)
		binary.LittleEndian.PutUint32(b[12:], r.Output)
	}
	return n, nil
}

// PutL0Pairs encodes pairs into dst and returns the bytes written.
func PutL0Pairs(dst []byte, pairs []L0Pair) (int, error) {
	n := len(pairs) * L0PairSize
	if len(dst) < n {
		return 0, fmt.Errorf("abi: %d L0 pairs need %d bytes, destination has %d", len(pairs), n, len(dst))
	}
	for i, p := range pairs {
		binary.LittleEndian.PutUint32(dst[i*L0PairSize:], p.Delete)
		binary.LittleEndian.PutUint32(dst[i*L0PairSize+4:], p.Target)
	}
	return n, nil
}

// PutCounters encodes counters into dst and returns the bytes written.
func PutCounters(dst []byte, cs []Counter) (int, error) {
	n := len(cs) * CounterSize
	if len(dst) < n {
		return 0, fmt.Errorf("abi: %d counters need %d bytes, destination has %d", len(cs), n, len(dst))
	}
	for i, c := range cs {
		b := dst[i*CounterSize:]
		binary.LittleEndian.PutUint32(b, c.Segment)
		binary.LittleEndian.PutUint32(b[4:], c.Deleted)
		binary.LittleEndian.PutUint32(b[8:], c.Expired)
		binary.LittleEndian.PutUint32(b[12:], c.Other)
	}
	return n, nil
}

func checkRecords(kind EmitKind, buf []byte) (int, error) {
	size := RecordSize(kind)
	if size == 0 {
		return 0, fmt.Errorf("abi: unknown decision kind %d", uint32(kind))
	}
	if len(buf)%size != 0 {
		return 0, fmt.Errorf("abi: %s buffer of %d bytes is not a multiple of the %d-byte record", kind, len(buf), size)
	}
	return len(buf) / size, nil
}

// DecodeRuns appends the runs encoded in buf to dst. Every run must have a
// non-zero count and must not overflow the u32 row space.
func DecodeRuns(dst []Run, buf []byte) ([]Run, error) {
	n, err := checkRecords(EmitRuns, buf)
	if err != nil {
		return dst, err
	}
	for i := 0; i < n; i++ {
		b := buf[i*RunSize:]
		r := Run{
			Segment:  binary.LittleEndian.Uint32(b),
			FirstRow: binary.LittleEndian.Uint32(b[4:]),
			Count:    binary.LittleEndian.Uint32(b[8:]),
			Output:   binary.LittleEndian.Uint32(b[12:]),
		}
		if r.Count == 0 {
			return dst, fmt.Errorf("abi: run %d (segment %d, row %d) is empty", i, r.Segment, r.FirstRow)
		}
		if uint64(r.FirstRow)+uint64(r.Count) > 1<<32 {
			return dst, fmt.Errorf("abi: run %d (segment %d) rows %d+%d overflow the 32-bit row space", i, r.Segment, r.FirstRow, r.Count)
		}
		dst = append(dst, r)
	}
	return dst, nil
}

// DecodeL0Pairs appends the pairs encoded in buf to dst.
func DecodeL0Pairs(dst []L0Pair, buf []byte) ([]L0Pair, error) {
	n, err := checkRecords(EmitL0, buf)
	if err != nil {
		return dst, err
	}
	for i := 0; i < n; i++ {
		dst = append(dst, L0Pair{
			Delete: binary.LittleEndian.Uint32(buf[i*L0PairSize:]),
			Target: binary.LittleEndian.Uint32(buf[i*L0PairSize+4:]),
		})
	}
	return dst, nil
}

// DecodeCounters appends the counters encoded in buf to dst.
func DecodeCounters(dst []Counter, buf []byte) ([]Counter, error) {
	n, err := checkRecords(EmitCounters, buf)
	if err != nil {
		return dst, err
	}
	for i := 0; i < n; i++ {
		b := buf[i*CounterSize:]
		dst = append(dst, Counter{
			Segment: binary.LittleEndian.Uint32(b),
			Deleted: binary.LittleEndian.Uint32(b[4:]),
			Expired: binary.LittleEndian.Uint32(b[8:]),
			Other:   binary.LittleEndian.Uint32(b[12:]),
		})
	}
	return dst, nil
}

// Decisions accumulates decoded decision records of every kind.
type Decisions struct {
	Runs     []Run
	L0       []L0Pair
	Counters []Counter
}

// Add decodes one emit buffer of the given kind and appends its records. On
// error d is unchanged.
func (d *Decisions) Add(kind EmitKind, buf []byte) error {
	var err error
	switch kind {
	case EmitRuns:
		n := len(d.Runs)
		if d.Runs, err = DecodeRuns(d.Runs, buf); err != nil {
			d.Runs = d.Runs[:n]
		}
	case EmitL0:
		n := len(d.L0)
		if d.L0, err = DecodeL0Pairs(d.L0, buf); err != nil {
			d.L0 = d.L0[:n]
		}
	case EmitCounters:
		n := len(d.Counters)
		if d.Counters, err = DecodeCounters(d.Counters, buf); err != nil {
			d.Counters = d.Counters[:n]
		}
	default:
		err = fmt.Errorf("abi: unknown decision kind %d", uint32(kind))
	}
	return err
}

// CheckRuns checks runs against a task: segment indexes in range and of role
// input, rows inside the segment, outputs below max_outputs. It does not
// detect a row emitted twice; the host's write stage does (it has to track
// coverage anyway).
func CheckRuns(t *Task, runs []Run) error {
	for i, r := range runs {
		if int(r.Segment) >= len(t.Segments) {
			return fmt.Errorf("abi: run %d names segment %d, task has %d", i, r.Segment, len(t.Segments))
		}
		s := &t.Segments[r.Segment]
		if s.Role != RoleInput {
			return fmt.Errorf("abi: run %d names segment %d (id %d) whose role is %s, not input", i, r.Segment, s.ID, s.Role)
		}
		if uint64(r.FirstRow)+uint64(r.Count) > s.Rows {
			return fmt.Errorf("abi: run %d covers rows [%d, %d) of segment %d (id %d) which has %d rows", i, r.FirstRow, uint64(r.FirstRow)+uint64(r.Count), r.Segment, s.ID, s.Rows)
		}
		if r.Output >= t.MaxOutputs {
			return fmt.Errorf("abi: run %d targets output %d, task allows %d outputs", i, r.Output, t.MaxOutputs)
		}
	}
	return nil
}

// CheckL0Pairs checks pairs against a task: delete index below the number
// of delete records, target a segment of role target.
func CheckL0Pairs(t *Task, pairs []L0Pair) error {
	total := t.TotalDeletes()
	for i, p := range pairs {
		if uint64(p.Delete) >= total {
			return fmt.Errorf("abi: L0 pair %d names delete %d, task has %d deletes", i, p.Delete, total)
		}
		if int(p.Target) >= len(t.Segments) || t.Segments[p.Target].Role != RoleTarget {
			return fmt.Errorf("abi: L0 pair %d names segment %d, which is not a target", i, p.Target)
		}
	}
	return nil
}
