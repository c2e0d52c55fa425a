package mixstrategy

import (
	"unsafe"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// mixer is the state of one mix task with primary keys of type K.
type mixer[K pkey.Key] struct {
	task    *sdk.Task
	cols    columns
	nowMs   int64
	ttlMs   int64 // collection_ttl_ns / 1e6
	ttlOn   bool  // collection_ttl_ns > 0 (a sub-millisecond TTL expires every row, as in Milvus)
	dels    []delIndex[K]
	sealed  bool
	arena   pkey.Arena
	counts  []abi.Counter // per segment
	place   placer
	runs    runList
	merge   *merger[K] // nil unless every input is sorted and there are >= 2
	scratch []K
	outs    []uint32 // per row of the current batch: output or dropped
	rowsIn  uint64
	kept    uint64
}

func newMixer[K pkey.Key](t *sdk.Task, cols columns) (*mixer[K], error) {
	m := &mixer[K]{
		task: t, cols: cols, nowMs: t.NowMs, ttlMs: t.CollectionTTLNs / 1e6, ttlOn: t.CollectionTTLNs > 0,
		dels: make([]delIndex[K], len(t.Segments)), counts: make([]abi.Counter, len(t.Segments)),
		place: newPlacer(t),
	}
	inputs, allSorted := 0, true
	var reserve uint64
	for i := range t.Segments {
		s := &t.Segments[i]
		m.counts[i].Segment = uint32(i)
		if s.Role != abi.RoleInput {
			continue
		}
		inputs++
		allSorted = allSorted && s.Sorted
		reserve += s.Deletes
	}
	var zero delEntry[K]
	if err := pkey.CheckMemory(reserve*uint64(unsafe.Sizeof(zero)), "mix: delete index"); err != nil {
		return nil, err
	}
	for i := range t.Segments {
		if s := &t.Segments[i]; s.Role == abi.RoleInput && s.Deletes > 0 {
			// reserve up to 1Mi records; beyond that the index grows (and
			// checks the grant) as records arrive
			m.dels[i].ents = make([]delEntry[K], 0, min(s.Deletes, 1<<20))
		}
	}
	if inputs >= 2 && allSorted {
		m.merge = newMerger[K](t)
	}
	return m, nil
}

func (m *mixer[K]) deletes(d *abi.Deletes) error {
	if m.sealed {
		return sdk.Errorf(abi.StatusBadInput, "mix: deletes after the first rows batch")
	}
	if r := m.task.Segments[d.Segment].Role; r != abi.RoleInput {
		return sdk.Errorf(abi.StatusBadInput, "mix: plan %d: deletes of %s, whose role is %q, not input", m.task.PlanID, segName(m.task, d.Segment), r)
	}
	m.scratch = pkey.View(d.PKs(), m.scratch)
	return m.dels[d.Segment].add(m.scratch, d.Timestamps(), &m.arena)
}

func (m *mixer[K]) seal() {
	if m.sealed {
		return
	}
	m.sealed = true
	for i := range m.dels {
		m.dels[i].seal()
	}
}

// expired is the TTL rule: the row's age (now minus the physical part of
// its hybrid timestamp) reached the TTL. The delete check comes first.
func (m *mixer[K]) expired(ts int64) bool {
	return m.ttlOn && m.nowMs-int64(uint64(ts)>>18) >= m.ttlMs
}

func (m *mixer[K]) batch(b *abi.Batch, out sdk.Emitter) error {
	m.seal()
	m.scratch = pkey.View(b.Column(m.cols.pk), m.scratch)
	pks := m.scratch
	ts := b.Column(m.cols.ts).Int64s()
	sizes := b.Column(m.cols.size).Uint32s()
	m.rowsIn += uint64(len(pks))
	if m.merge != nil {
		if err := m.merge.add(m, b, pks, ts, sizes); err != nil {
			return err
		}
		return m.merge.drain(m, out, false)
	}
	return m.filterInOrder(b.Segment, uint32(b.FirstRow), pks, ts, sizes, out)
}

// dropped marks a row that does not survive in mixer.outs.
const dropped = ^uint32(0)

// filterInOrder is the unsorted path: rows keep their arrival order. The
// per-row loops make no calls (calls inside loops are costly in Go's wasm
// code): the first decides every row's output, the second turns the
// outputs into runs.
func (m *mixer[K]) filterInOrder(seg, first uint32, pks []K, ts []int64, sizes []uint32, out sdk.Emitter) error {
	di, c := &m.dels[seg], &m.counts[seg]
	hasDels := len(di.ents) > 0
	ttlMs, ttlOn, nowMs := m.ttlMs, m.ttlOn, m.nowMs
	p := m.place
	if cap(m.outs) < len(pks) {
		if err := pkey.CheckMemory(uint64(len(pks))*4, "mix: batch outputs"); err != nil {
			return err
		}
		m.outs = make([]uint32, len(pks))
	}
	outs := m.outs[:len(pks)]
	var deleted, expired uint32
	full := false
	for i, pk := range pks {
		t := ts[i]
		if hasDels && di.deleted(pk, uint64(t)) {
			deleted++
			outs[i] = dropped
			continue
		}
		if ttlOn && nowMs-int64(uint64(t)>>18) >= ttlMs {
			expired++
			outs[i] = dropped
			continue
		}
		o, ok := p.next(sizes[i])
		if !ok {
			full = true
			break
		}
		outs[i] = o
	}
	if full {
		return p.err()
	}
	m.place = p
	c.Deleted += deleted
	c.Expired += expired
	m.kept += uint64(len(pks)) - uint64(deleted) - uint64(expired)
	if err := m.runs.addOutputs(seg, first, outs); err != nil {
		return err
	}
	return m.runs.flush(out)
}

func (m *mixer[K]) finish(out sdk.Emitter) error {
	m.seal()
	if m.merge != nil {
		if err := m.merge.drain(m, out, true); err != nil {
			return err
		}
	}
	if err := m.runs.flush(out); err != nil {
		return err
	}
	var cs []abi.Counter
	var deleted, expired uint64
	for _, c := range m.counts {
		if c.Deleted > 0 || c.Expired > 0 {
			cs = append(cs, c)
			deleted += uint64(c.Deleted)
			expired += uint64(c.Expired)
		}
	}
	if len(cs) > 0 {
		if err := out.Counters(cs); err != nil {
			return err
		}
	}
	mode := "in arrival order"
	if m.merge != nil {
		mode = "merged by pk"
	}
	sdk.Logf(abi.LogInfo, "mix: plan %d: %d rows in, %d kept %s into %d outputs (%d runs), %d deleted, %d expired",
		m.task.PlanID, m.rowsIn, m.kept, mode, m.place.outputs(), m.runs.emitted, deleted, expired)
	return nil
}
