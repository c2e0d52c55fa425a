package mixstrategy

import (
	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// placer assigns surviving rows to outputs by size, as Milvus's
// MultiSegmentWriter rotates segments: before a row is placed, an output
// that already holds max_size bytes (or max_rows rows) is closed.
type placer struct {
	task    *sdk.Task
	out     uint32
	bytes   uint64 // bytes in the current output
	rows    uint64 // rows in the current output
	maxSize uint64
	maxRows uint64
}

func newPlacer(t *sdk.Task) placer {
	return placer{task: t, maxSize: uint64(t.MaxSize), maxRows: uint64(t.MaxRows)}
}

// place returns the output of the next surviving row of the given size.
func (p *placer) place(size uint32) (uint32, error) {
	if p.rows > 0 && (p.bytes >= p.maxSize || p.maxRows > 0 && p.rows >= p.maxRows) {
		p.out++
		p.bytes, p.rows = 0, 0
	}
	if p.out >= p.task.MaxOutputs {
		return 0, outputError(p.task, p.out)
	}
	p.bytes += uint64(size)
	p.rows++
	return p.out, nil
}

// outputs is the number of outputs that received rows.
func (p *placer) outputs() uint32 {
	if p.rows == 0 && p.out == 0 {
		return 0
	}
	return p.out + 1
}

// runList collects runs, merging a row into the previous run when it
// continues it (same segment, next row, same output).
type runList struct {
	runs    []abi.Run
	emitted uint64 // runs handed to the host
}

func (l *runList) add(seg, row, out uint32) error {
	if n := len(l.runs); n > 0 {
		r := &l.runs[n-1]
		if r.Segment == seg && r.Output == out && r.FirstRow+r.Count == row {
			r.Count++
			return nil
		}
	}
	var err error
	if l.runs, err = pkey.Grow(l.runs, 1, "mix: run list"); err != nil {
		return err
	}
	l.runs = append(l.runs, abi.Run{Segment: seg, FirstRow: row, Count: 1, Output: out})
	return nil
}

// flush emits the collected runs. Unless final, the last run is held back,
// since the next batch may continue it.
func (l *runList) flush(out sdk.Emitter, final bool) error {
	n := len(l.runs)
	if !final {
		n--
	}
	if n <= 0 {
		return nil
	}
	if err := out.Runs(l.runs[:n]); err != nil {
		return err
	}
	l.emitted += uint64(n)
	rest := copy(l.runs, l.runs[n:])
	l.runs = l.runs[:rest]
	return nil
}
