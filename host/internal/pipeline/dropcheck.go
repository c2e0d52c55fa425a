package pipeline

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/tso"
)

// ErrABIMisuse marks a strategy that broke the ABI contract in a way only
// the pipeline sees (counters that do not match the rows it dropped). The
// host exports it as host.ErrABIMisuse.
var ErrABIMisuse = errors.New("ABI misuse")

// dropCheck holds a mix strategy to its counters (ABI.md section 9.5): it
// classifies every row no run covered, once its fate is final, as deleted
// (a newer delete of its pk in its segment), expired (past the TTL), both
// or neither, and compares the counts with what the strategy reported.
// Only dropped rows are looked up, so the cost follows the rows dropped.
// All of it runs on the strategy goroutine.
type dropCheck struct {
	task  *abi.Task
	pkID  int64
	nowMs int64
	ttl   time.Duration

	// dels keeps a segment's delete records until its first dropped row
	// needs a lookup; maps then replaces them. Both are dropped once every
	// row of the segment is classified. They are the decoded deltalogs the
	// task's memory estimate already counts for the whole task.
	dels []*deltalog.Deletes
	maps []*deltalog.Map
	segs []segDrops
}

// segDrops are one segment's dropped rows, by what explains them, and the
// strategy's counters.
type segDrops struct {
	classified uint64 // rows below this are classified
	dropped    uint64
	deletable  uint64 // dropped rows with a newer delete
	expirable  uint64 // dropped rows past the TTL
	explained  uint64 // dropped rows with either

	deleted, expired, other uint64 // reported
}

func newDropCheck(p *Plan, task *abi.Task, dels []*deltalog.Deletes) *dropCheck {
	return &dropCheck{task: task, pkID: p.PK.GetFieldID(), nowMs: p.NowMs, ttl: time.Duration(max(p.GetCollectionTtl(), 0)),
		dels: append([]*deltalog.Deletes(nil), dels...), maps: make([]*deltalog.Map, len(dels)), segs: make([]segDrops, len(dels))}
}

// report adds one counters record. Sums beyond the segment's rows are
// refused at once: no run can make them right.
func (d *dropCheck) report(i int, c abi.Counter) error {
	if int(c.Segment) >= len(d.segs) {
		return fmt.Errorf("counter %d names segment %d, task has %d", i, c.Segment, len(d.segs))
	}
	s := &d.segs[c.Segment]
	s.deleted += uint64(c.Deleted)
	s.expired += uint64(c.Expired)
	s.other += uint64(c.Other)
	if rows := d.task.Segments[c.Segment].Rows; s.deleted+s.expired+s.other > rows {
		return fmt.Errorf("counter %d brings segment %d (input %d) to %d deleted + %d expired + %d other rows dropped, but the segment has %d rows",
			i, d.task.Segments[c.Segment].ID, c.Segment, s.deleted, s.expired, s.other, rows)
	}
	return nil
}

// classify classifies rows [from, to) of segment seg, whose coverage by runs
// is final, from the batches that hold them. covered is the segment's
// bitmap of rows runs covered.
func (d *dropCheck) classify(seg uint32, batches []*segread.Batch, covered []uint64, from, to uint64) error {
	s := &d.segs[seg]
	if from != s.classified {
		return fmt.Errorf("classifying rows from %d of segment %d, classified up to %d (internal error)", from, seg, s.classified)
	}
	for _, b := range batches {
		lo, hi := max(from, uint64(b.FirstRow)), min(to, uint64(b.FirstRow)+uint64(b.Rows))
		for row := lo; row < hi; {
			w := covered[row/64] >> (row % 64)
			if w&1 != 0 { // skip the covered rows of this word
				row += uint64(bits.TrailingZeros64(^w))
				continue
			}
			if err := d.drop(seg, b, int(row-uint64(b.FirstRow))); err != nil {
				return err
			}
			row++
		}
		if lo < hi && lo == s.classified {
			s.classified = hi
		}
	}
	if s.classified != to {
		return fmt.Errorf("rows [%d, %d) of segment %d are not held for the counter check (internal error)", s.classified, to, seg)
	}
	if to == d.task.Segments[seg].Rows {
		d.dels[seg], d.maps[seg] = nil, nil
	}
	return nil
}

// drop classifies row i of b, a row no run covered.
func (d *dropCheck) drop(seg uint32, b *segread.Batch, i int) error {
	s := &d.segs[seg]
	tsCol, ok := b.Columns[abi.FieldIDTimestamp].(*array.Int64)
	if !ok {
		return fmt.Errorf("batch of segment %d has no Int64 timestamp column (internal error)", seg)
	}
	ts := uint64(tsCol.Value(i))
	del, err := d.deleted(seg, b, i, ts)
	if err != nil {
		return err
	}
	exp := tso.Expired(ts, d.nowMs, d.ttl)
	s.dropped++
	if del {
		s.deletable++
	}
	if exp {
		s.expirable++
	}
	if del || exp {
		s.explained++
	}
	return nil
}

// deleted applies the strict delete rule to row i of b, building the
// segment's delete map at its first dropped row.
func (d *dropCheck) deleted(seg uint32, b *segread.Batch, i int, ts uint64) (bool, error) {
	m := d.maps[seg]
	if m == nil {
		dl := d.dels[seg]
		if dl.Len() == 0 {
			return false, nil
		}
		var err error
		if m, err = deltalog.BuildMap(dl.PKType, dl); err != nil {
			return false, fmt.Errorf("segment %d: %w", seg, err)
		}
		d.maps[seg], d.dels[seg] = m, nil
	}
	switch pk := b.Columns[d.pkID].(type) {
	case *array.Int64:
		return m.DeletedInt64(pk.Value(i), ts), nil
	case *array.String:
		return m.DeletedVarChar(pk.Value(i), ts), nil
	}
	return false, fmt.Errorf("batch of segment %d has primary key column %T (internal error)", seg, b.Columns[d.pkID])
}

// check compares every segment's counters with its rows, all classified.
// It returns an ErrABIMisuse error naming the first segment that does not
// add up.
func (d *dropCheck) check() error {
	for i := range d.segs {
		s, id, rows := &d.segs[i], d.task.Segments[i].ID, d.task.Segments[i].Rows
		if s.classified != rows {
			return fmt.Errorf("segment %d: %d of %d rows classified for the counter check (internal error)", id, s.classified, rows)
		}
		counts := fmt.Sprintf("%d rows in, %d kept, %d reported deleted, %d expired, %d other", rows, rows-s.dropped, s.deleted, s.expired, s.other)
		var why string
		switch {
		case s.deleted+s.expired+s.other != s.dropped:
			why = fmt.Sprintf("kept + deleted + expired + other must equal the rows in; the strategy dropped %d rows", s.dropped)
		case s.deleted > s.deletable:
			why = fmt.Sprintf("only %d of the dropped rows have a delete record newer than the row", s.deletable)
		case s.expired > s.expirable:
			why = fmt.Sprintf("only %d of the dropped rows are past the collection TTL (%v at now_ms %d)", s.expirable, d.ttl, d.nowMs)
		case s.deleted+s.expired > s.explained:
			why = fmt.Sprintf("only %d of the dropped rows are deleted or past the TTL, and a row counts once", s.explained)
		default:
			continue
		}
		return fmt.Errorf("%w: the counters of segment %d (input %d) do not match the rows the strategy dropped: %s; %s",
			ErrABIMisuse, id, i, counts, why)
	}
	return nil
}

// sums are the reported counters summed over the task.
func (d *dropCheck) sums() (deleted, expired, other int64) {
	for _, s := range d.segs {
		deleted, expired, other = deleted+int64(s.deleted), expired+int64(s.expired), other+int64(s.other)
	}
	return deleted, expired, other
}
