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

// next returns the output of the next surviving row of the given size;
// ok is false when that output is not below max_outputs (see err). It is
// small enough to be inlined into the per-row loops.
func (p *placer) next(size uint32) (out uint32, ok bool) {
	if p.rows > 0 && (p.bytes >= p.maxSize || p.maxRows > 0 && p.rows >= p.maxRows) {
		p.out++
		p.bytes, p.rows = 0, 0
	}
	p.bytes += uint64(size)
	p.rows++
	return p.out, p.out < p.task.MaxOutputs
}

// err is the failure after next returned !ok.
func (p *placer) err() error { return outputError(p.task, p.out) }

// outputs is the number of outputs that received rows.
func (p *placer) outputs() uint32 {
	if p.rows == 0 && p.out == 0 {
		return 0
	}
	return p.out + 1
}

// runList collects runs. The open run (cur) grows while rows continue it
// (same segment, next row, same output); closed runs wait in runs until
// flush hands them to the host.
type runList struct {
	runs    []abi.Run
	cur     abi.Run // Count == 0: no open run
	emitted uint64  // runs handed to the host
}

func (l *runList) add(seg, row, out uint32) error {
	c := &l.cur
	if c.Count > 0 && c.FirstRow+c.Count == row && c.Segment == seg && c.Output == out {
		c.Count++
		return nil
	}
	return l.start(seg, row, out)
}

// addOutputs adds rows first, first+1, ... of seg whose outputs are outs
// (dropped = not kept), as runs.
func (l *runList) addOutputs(seg, first uint32, outs []uint32) error {
	var err error
	// at most one run per row, plus the open run
	if l.runs, err = pkey.Grow(l.runs, len(outs)+1, "mix: run list"); err != nil {
		return err
	}
	runs, cur := l.runs, l.cur
	for i, o := range outs {
		if o == dropped {
			continue
		}
		row := first + uint32(i)
		if cur.Count > 0 && cur.FirstRow+cur.Count == row && cur.Segment == seg && cur.Output == o {
			cur.Count++
			continue
		}
		if cur.Count > 0 {
			runs = append(runs, cur)
		}
		cur = abi.Run{Segment: seg, FirstRow: row, Count: 1, Output: o}
	}
	l.runs, l.cur = runs, cur
	return nil
}

// start closes the open run and opens a new one of one row.
func (l *runList) start(seg, row, out uint32) error {
	if err := l.close(); err != nil {
		return err
	}
	l.cur = abi.Run{Segment: seg, FirstRow: row, Count: 1, Output: out}
	return nil
}

func (l *runList) close() error {
	if l.cur.Count == 0 {
		return nil
	}
	if len(l.runs) == cap(l.runs) {
		var err error
		if l.runs, err = pkey.Grow(l.runs, 1, "mix: run list"); err != nil {
			return err
		}
	}
	l.runs = append(l.runs, l.cur)
	l.cur = abi.Run{}
	return nil
}

// flush emits every run, the open one too. A run that the next batch would
// have continued is split at the batch boundary instead: the host holds a
// batch until a run starts past it, so an open run kept across batches
// (every row of a segment, when nothing is deleted) would pin the whole
// segment's input in host memory.
func (l *runList) flush(out sdk.Emitter) error {
	if err := l.close(); err != nil {
		return err
	}
	if len(l.runs) == 0 {
		return nil
	}
	if err := out.Runs(l.runs); err != nil {
		return err
	}
	l.emitted += uint64(len(l.runs))
	l.runs = l.runs[:0]
	return nil
}
