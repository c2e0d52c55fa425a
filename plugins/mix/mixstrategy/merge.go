package mixstrategy

import (
	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// queued is a surviving row of a sorted input waiting for its turn.
type queued[K pkey.Key] struct {
	pk   K
	row  uint32
	size uint32
}

// segQueue is the merge state of one input segment: its surviving rows not
// yet emitted (rows[head:]) and the pk of the last row it delivered.
type segQueue[K pkey.Key] struct {
	rows    []queued[K]
	head    int
	last    K
	started bool   // at least one row delivered
	seen    uint64 // rows delivered
	total   uint64 // rows announced in the task (0 for non-inputs)
}

func (q *segQueue[K]) empty() bool    { return q.head == len(q.rows) }
func (q *segQueue[K]) complete() bool { return q.seen >= q.total }

// merger k-way merges sorted inputs whose batches arrive in any
// interleaving. A buffered row (pk, s) is emitted once no row still to come
// can precede it: every incomplete segment t with nothing buffered will
// deliver only rows with key >= (last[t], t), so the row is safe when
// (pk, s) < (last[t], t) for all of them. (A segment with buffered rows
// cannot block the smallest buffered row: its own head is at least that
// row.) Only rows that are not yet safe stay buffered.
type merger[K pkey.Key] struct {
	segs     []segQueue[K]
	heap     []uint32 // segments with buffered rows, smallest head first
	buffered uint64
	peak     uint64
}

func newMerger[K pkey.Key](t *sdk.Task) *merger[K] {
	g := &merger[K]{segs: make([]segQueue[K], len(t.Segments))}
	for i := range t.Segments {
		if t.Segments[i].Role == abi.RoleInput {
			g.segs[i].total = t.Segments[i].Rows
		}
	}
	return g
}

// add checks the batch's order and buffers its surviving rows.
func (g *merger[K]) add(m *mixer[K], b *abi.Batch, pks []K, ts []int64, sizes []uint32) error {
	if len(pks) == 0 {
		return nil
	}
	q := &g.segs[b.Segment]
	for i := range pks {
		prev, ok := q.last, q.started
		if i > 0 {
			prev, ok = pks[i-1], true
		}
		if ok && pks[i] < prev {
			return sdk.Errorf(abi.StatusBadInput, "mix: plan %d: %s is marked sorted but row %d has a smaller primary key than row %d",
				m.task.PlanID, segName(m.task, b.Segment), b.FirstRow+uint64(i), b.FirstRow+uint64(i)-1)
		}
	}
	if q.head > 0 && q.head >= len(q.rows)/2 {
		n := copy(q.rows, q.rows[q.head:])
		clear(q.rows[n:])
		q.rows, q.head = q.rows[:n], 0
	}
	var err error
	if q.rows, err = pkey.Grow(q.rows, len(pks), "mix: merge buffer"); err != nil {
		return err
	}
	di, c, first := &m.dels[b.Segment], &m.counts[b.Segment], uint32(b.FirstRow)
	hasDels := len(di.ents) > 0
	before := len(q.rows)
	for i, pk := range pks {
		if hasDels && di.deletedAsc(pk, uint64(ts[i])) {
			c.Deleted++
			continue
		}
		if m.expired(ts[i]) {
			c.Expired++
			continue
		}
		q.rows = append(q.rows, queued[K]{pk: pk, row: first + uint32(i), size: sizes[i]})
	}
	if m.task.PKType == abi.TypeString { // the keys alias the batch: copy them
		for j := before; j < len(q.rows); j++ {
			if q.rows[j].pk, err = pkey.Keep(&m.arena, q.rows[j].pk); err != nil {
				return err
			}
		}
	}
	if q.last, err = pkey.Keep(&m.arena, pks[len(pks)-1]); err != nil {
		return err
	}
	q.started = true
	q.seen += uint64(len(pks))
	g.buffered += uint64(len(q.rows) - before)
	g.peak = max(g.peak, g.buffered)
	return nil
}

// drain emits every buffered row that is safe, in merge order; with final
// set every segment is complete and everything is emitted.
func (g *merger[K]) drain(m *mixer[K], out sdk.Emitter, final bool) error {
	var bound K
	var boundSeg uint32
	bounded := false
	g.heap = g.heap[:0]
	for s := range g.segs {
		q := &g.segs[s]
		switch {
		case !q.empty():
			g.heap = append(g.heap, uint32(s))
		case final || q.complete():
		case !q.started:
			return m.runs.flush(out) // nothing is safe before every segment has started
		case !bounded || pkey.Less(q.last, uint32(s), bound, boundSeg):
			bound, boundSeg, bounded = q.last, uint32(s), true
		}
	}
	for i := len(g.heap)/2 - 1; i >= 0; i-- {
		g.down(i)
	}
	for len(g.heap) > 0 {
		s := g.heap[0]
		q := &g.segs[s]
		r := q.rows[q.head]
		if bounded && !pkey.Less(r.pk, s, bound, boundSeg) {
			break
		}
		o, ok := m.place.next(r.size)
		if !ok {
			return m.place.err()
		}
		m.kept++
		if err := m.runs.add(s, r.row, o); err != nil {
			return err
		}
		q.head++
		g.buffered--
		if !q.empty() {
			g.down(0)
			continue
		}
		clear(q.rows)
		q.rows, q.head = q.rows[:0], 0
		last := len(g.heap) - 1
		g.heap[0] = g.heap[last]
		g.heap = g.heap[:last]
		g.down(0)
		if !final && !q.complete() && (!bounded || pkey.Less(q.last, s, bound, boundSeg)) {
			bound, boundSeg, bounded = q.last, s, true
		}
	}
	return m.runs.flush(out)
}

func (g *merger[K]) less(a, b uint32) bool {
	qa, qb := &g.segs[a], &g.segs[b]
	return pkey.Less(qa.rows[qa.head].pk, a, qb.rows[qb.head].pk, b)
}

func (g *merger[K]) down(i int) {
	h := g.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		if r := l + 1; r < len(h) && g.less(h[r], h[l]) {
			l = r
		}
		if !g.less(h[l], h[i]) {
			return
		}
		h[i], h[l] = h[l], h[i]
		i = l
	}
}
