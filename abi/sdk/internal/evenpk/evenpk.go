// Package evenpk is the SDK's test strategy: a mix strategy that keeps rows
// whose int64 primary key is even and not deleted, splits outputs by
// max_size using the row-size column, and reports dropped rows: deleted
// ones as deleted, odd keys as other. Plan IDs -1 and -2 make it panic and
// report out-of-memory, for tests of the SDK glue.
package evenpk

import (
	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
)

// Strategy keeps even primary keys.
type Strategy struct {
	task    *sdk.Task
	deleted map[delKey]int64 // newest delete ts of a pk in a segment
	output  uint32
	size    int64
	runs    []sdk.Run
}

// delKey is a pk of one segment: deletes apply to their own segment only.
type delKey struct {
	seg uint32
	pk  int64
}

// New returns a Strategy.
func New() *Strategy { return &Strategy{} }

// Manifest implements sdk.Strategy.
func (s *Strategy) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "evenpk", Version: "0.1.0", Handles: []string{abi.CompactionMix}, BatchRows: 4096}
}

// Begin implements sdk.Strategy.
func (s *Strategy) Begin(t *sdk.Task) error {
	switch t.PlanID {
	case -1:
		panic("evenpk was asked to panic")
	case -2:
		if err := sdk.CheckMemory(1 << 40); err != nil {
			return err
		}
	}
	if t.PKType != abi.TypeInt64 {
		return sdk.Errorf(abi.StatusUnsupported, "evenpk needs an int64 primary key, task has %s", t.PKType)
	}
	if _, ok := t.ColumnIndex(abi.FieldIDRowSize); !ok {
		return sdk.Errorf(abi.StatusUnsupported, "evenpk needs the row-size column")
	}
	*s = Strategy{task: t, deleted: map[delKey]int64{}, runs: s.runs[:0]}
	sdk.Logf(abi.LogInfo, "evenpk: plan %d, %d segments", t.PlanID, len(t.Segments))
	return nil
}

// Deletes implements sdk.Strategy.
func (s *Strategy) Deletes(d *sdk.DeleteBatch) error {
	pks, ts := d.PKs().Int64s(), d.Timestamps()
	for i, pk := range pks {
		k := delKey{d.Segment, pk}
		if ts[i] > s.deleted[k] {
			s.deleted[k] = ts[i]
		}
	}
	return nil
}

// Batch implements sdk.Strategy.
func (s *Strategy) Batch(b *sdk.Batch, out sdk.Emitter) error {
	pks := b.Field(s.task.PKFieldID).Int64s()
	ts := b.Field(abi.FieldIDTimestamp).Int64s()
	sizes := b.RowSizes()
	s.runs = s.runs[:0]
	var c sdk.Counter
	for i, pk := range pks {
		if s.deleted[delKey{b.Segment, pk}] > ts[i] {
			c.Deleted++
			continue
		}
		if pk%2 != 0 {
			c.Other++
			continue
		}
		if s.task.MaxSize > 0 && s.size > 0 && s.size+int64(sizes[i]) > s.task.MaxSize {
			s.output++
			s.size = 0
		}
		s.size += int64(sizes[i])
		row := uint32(b.FirstRow) + uint32(i)
		if n := len(s.runs); n > 0 && s.runs[n-1].Output == s.output && s.runs[n-1].FirstRow+s.runs[n-1].Count == row {
			s.runs[n-1].Count++
		} else {
			s.runs = append(s.runs, sdk.Run{Segment: b.Segment, FirstRow: row, Count: 1, Output: s.output})
		}
	}
	if len(s.runs) > 0 {
		if err := out.Runs(s.runs); err != nil {
			return err
		}
	}
	if c.Deleted+c.Other > 0 {
		c.Segment = b.Segment
		return out.Counters([]sdk.Counter{c})
	}
	return nil
}

// Finish implements sdk.Strategy.
func (s *Strategy) Finish(out sdk.Emitter) error {
	sdk.Logf(abi.LogInfo, "evenpk: done, %d outputs", s.output+1)
	return nil
}
