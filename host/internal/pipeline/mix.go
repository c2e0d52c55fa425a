package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/abiarrow"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/deltalog"
)

// writeItem is one emit's work for the write stage: runs to apply, then
// batches to release.
type writeItem struct {
	runs    []abi.Run
	release []releaseMark
}

// releaseMark releases the held batches of seg that end at or before upTo.
type releaseMark struct {
	seg  uint32
	upTo uint64
}

// mixRun is the state of one mix attempt. Fields marked (S) belong to the
// strategy goroutine, which also runs the emit callback (the guest calls
// it during Send/Finish); (W) to the write goroutine; mu guards held.
type mixRun struct {
	p      *Plan
	cfg    Config
	ctx    context.Context
	fail   *failure
	task   *abi.Task
	writer *segwrite.Writer

	delivered []uint64         // (S) rows delivered per segment
	covered   [][]uint64       // (S) rows covered by runs, bitmap per segment
	maxStart  []uint64         // (S) highest run start per segment
	ends      [][]uint64       // (S) ends of delivered batches not yet released
	released  []uint64         // (S) rows below this are released, per segment
	drops     *dropCheck       // (S) the strategy's counters and the rows it dropped
	scratch   []*segread.Batch // (S) held batches being classified
	output    int64            // (S) highest output used so far, -1 before the first run
	writeCh   chan writeItem

	mu   sync.Mutex
	held [][]*segread.Batch // batches delivered and not yet released, per segment

	heldBytes  atomic.Int64  // row bytes of the held batches
	heldPeak   int64         // (S) the most heldBytes seen when a batch was added
	pending    atomic.Int64  // write items queued and not yet applied
	progressed chan struct{} // signalled by the write stage after each item

	rowsWritten, bytesWritten atomic.Int64 // (W) rows and row bytes appended
	progress                  Progress
}

func runMix(ctx context.Context, p *Plan, cfg Config, start Start) (res *Result, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &mixRun{p: p, cfg: cfg, ctx: ctx, fail: &failure{cancel: cancel}}
	segs := p.GetSegmentBinlogs()
	n := len(segs)
	m.delivered, m.covered, m.maxStart = make([]uint64, n), make([][]uint64, n), make([]uint64, n)
	m.ends, m.released = make([][]uint64, n), make([]uint64, n)
	m.held = make([][]*segread.Batch, n)
	m.progress.PlanID = p.GetPlanID()
	m.output = -1

	sink := &Sink{emit: m.emit, probe: func([]byte, []byte) error {
		return errors.New("probe called in a mix task")
	}}
	guest, err := start(ctx, sink)
	if err != nil {
		return nil, stageErr("strategy", err)
	}
	man := guest.Manifest()
	if !man.HandlesType(abi.CompactionMix) {
		return nil, stageErr("setup", fmt.Errorf("strategy %s@%s does not handle mix compaction (handles %v)", man.Name, man.Version, man.Handles))
	}
	cols, err := ResolveColumns(p.GetSchema(), p.PK, man.FieldSelectors())
	if err != nil {
		return nil, stageErr("setup", fmt.Errorf("strategy %s@%s: %w", man.Name, man.Version, err))
	}
	batchRows := cfg.BatchRows
	if man.BatchRows > 0 && man.BatchRows < batchRows {
		batchRows = man.BatchRows
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	dels, err := readAllDeletes(ctx, cfg.Store, p.PK.GetDataType(), segs, all, cfg.ReadParallelism)
	if err != nil {
		return nil, stageErr("read", err)
	}

	readers := make([]*segread.Reader, 0, n)
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	m.task = newTask(p, cols, TaskParams{Grant: cfg.Grant, BatchRows: batchRows})
	for i, s := range segs {
		r, err := segread.Open(ctx, cfg.Store, p.GetSchema(), s, segread.Options{BatchRows: batchRows, Parallelism: cfg.ReadParallelism,
			DownloadLimit: cfg.DownloadLimit})
		if err != nil {
			return nil, stageErr("read", err)
		}
		readers = append(readers, r)
		rows := r.NumRows()
		if rows < 0 || rows > math.MaxUint32 {
			return nil, stageErr("read", fmt.Errorf("segment %d has %d rows; ABI v1 delivers at most 2^32-1 per segment", s.GetSegmentID(), rows))
		}
		m.covered[i] = make([]uint64, (rows+63)/64)
		m.task.Segments = append(m.task.Segments, abi.Segment{ID: s.GetSegmentID(), Level: levelName(s.GetLevel()),
			Role: abi.RoleInput, Rows: uint64(rows), Deletes: uint64(dels[i].Len()), Sorted: p.Sorted})
	}
	m.drops = newDropCheck(p, m.task, dels)

	m.writer, err = segwrite.New(segwrite.Config{
		Store: cfg.Store, Root: cfg.Root, Schema: p.GetSchema(),
		CollectionID: p.CollID, PartitionID: p.PartID, Channel: p.GetChannel(),
		SegmentIDs:    &segwrite.IDRange{Next: p.GetPreAllocatedSegmentIDs().GetBegin(), End: p.GetPreAllocatedSegmentIDs().GetEnd()},
		LogIDs:        &segwrite.IDRange{Next: p.GetPreAllocatedLogIDs().GetBegin(), End: p.GetPreAllocatedLogIDs().GetEnd()},
		ChunkBytes:    p.Params.BinlogMaxSize,
		BloomCapacity: bloomCapacity(p.CompactionPlan),
		Timestamp:     uint64(p.GetStartTime()),
		IsSorted:      p.Sorted,
		FieldOptions:  cfg.FieldOptions, UploadParallelism: cfg.UploadParallelism,
		StorageVersion: p.Params.OutputVersion(cfg.OutputVersion), SplitPolicy: cfg.SplitPolicy,
	})
	if err != nil {
		return nil, stageErr("write", err)
	}
	defer func() {
		if err != nil {
			err = cleanup(ctx, cfg, p.GetPlanID(), err, m.writer.Abort)
		}
	}()

	if err := m.strategy(guest, readers, dels); err != nil {
		return nil, err
	}
	outSegs, err := m.writer.Close(ctx)
	if err != nil {
		return nil, stageErr("write", err)
	}
	res = &Result{Result: &datapb.CompactionPlanResult{PlanID: p.GetPlanID(), State: datapb.CompactionTaskState_completed,
		Channel: p.GetChannel(), Type: p.GetType(), Segments: outSegs}}
	for i := range segs {
		res.Counts.Input += int64(m.delivered[i])
		res.Counts.Deletes += int64(m.task.Segments[i].Deletes)
	}
	res.Counts.Deleted, res.Counts.Expired, res.Counts.Dropped = m.drops.sums()
	res.Counts.Kept = m.rowsWritten.Load()
	res.Counts.HeldPeak = m.heldPeak
	m.progress.Stage = "done"
	m.progress.RowsWritten, m.progress.BytesWritten = m.rowsWritten.Load(), m.bytesWritten.Load()
	m.progress.Deleted, m.progress.Expired, m.progress.Dropped = res.Counts.Deleted, res.Counts.Expired, res.Counts.Dropped
	m.report()
	return res, nil
}

// bloomCapacity is Milvus's row estimate for each output's bloom filter:
// the entries_num of the first FieldBinlog of each input, else total_rows.
func bloomCapacity(plan *datapb.CompactionPlan) int {
	var n int64
	for _, s := range plan.GetSegmentBinlogs() {
		if fbs := s.GetFieldBinlogs(); len(fbs) > 0 {
			for _, b := range fbs[0].GetBinlogs() {
				n += b.GetEntriesNum()
			}
		}
	}
	if n <= 0 {
		n = plan.GetTotalRows()
	}
	return int(max(n, 1))
}

func (m *mixRun) report() {
	if m.cfg.Progress != nil {
		m.cfg.Progress(m.progress)
	}
}

// strategy runs the strategy stage: begin, deletes, rows in feeding
// order, finish; the read and write stages run concurrently with it.
func (m *mixRun) strategy(g Guest, readers []*segread.Reader, dels []*deltalog.Deletes) error {
	ctx := m.ctx
	m.writeCh = make(chan writeItem, 64)
	m.progressed = make(chan struct{}, 1)
	var wwg sync.WaitGroup
	wwg.Add(1)
	go func() {
		defer wwg.Done()
		m.writeStage()
	}()
	feed := newFeeder(ctx, m.fail, readers, m.p.Sorted, m.p.PK.GetFieldID())
	err := m.drive(g, feed, dels)
	close(m.writeCh)
	wwg.Wait()
	feed.stop()
	if err == nil && m.fail.get() == nil {
		err = m.checkDrops()
	}
	m.mu.Lock()
	for i := range m.held {
		for _, b := range m.held[i] {
			b.Release()
		}
		m.held[i] = nil
	}
	m.mu.Unlock()
	if ferr := m.fail.get(); ferr != nil {
		return ferr
	}
	return err
}

// drive feeds the guest; it returns the first root cause.
func (m *mixRun) drive(g Guest, feed *feeder, dels []*deltalog.Deletes) error {
	ctx := m.ctx
	guestErr := func(err error) error {
		if ferr := m.fail.get(); ferr != nil {
			return ferr
		}
		return m.fail.set(stageErr("strategy", err))
	}
	if err := beginTask(ctx, g, m.task); err != nil {
		return guestErr(err)
	}
	var next uint64
	for i, d := range dels {
		if err := sendDeletes(ctx, g, m.p.PK.GetFieldID(), uint32(i), d, &next, m.task.BatchRows); err != nil {
			return guestErr(err)
		}
		dels[i] = nil // delivered: the strategy keeps what it needs, m.drops what it checks
	}
	m.progress.Stage, m.progress.DeletesRead = "deletes", int64(next)
	m.report()
	m.progress.Stage = "rows"
	for {
		if err := m.throttle(); err != nil {
			return m.fail.set(stageErr("write", err))
		}
		seg, b, err := feed.next()
		if err != nil {
			return m.fail.set(stageErr("read", err))
		}
		if b == nil {
			break
		}
		m.mu.Lock()
		m.held[seg] = append(m.held[seg], b)
		m.mu.Unlock()
		m.heldPeak = max(m.heldPeak, m.heldBytes.Add(b.Bytes))
		end := uint64(b.FirstRow) + uint64(b.Rows)
		m.delivered[seg] = end
		m.ends[seg] = append(m.ends[seg], end)
		cols, err := m.encode(b)
		if err != nil {
			return m.fail.set(stageErr("strategy", err))
		}
		h := abi.BatchHeader{Kind: abi.BatchRows, Segment: uint32(seg), FirstRow: uint64(b.FirstRow), Rows: b.Rows}
		if err := g.Send(ctx, h, cols); err != nil {
			return guestErr(err)
		}
		m.progress.RowsRead += int64(b.Rows)
		m.progress.BytesRead += b.Bytes
		m.progress.RowsWritten, m.progress.BytesWritten = m.rowsWritten.Load(), m.bytesWritten.Load()
		m.report()
	}
	if err := g.Finish(ctx); err != nil {
		return guestErr(err)
	}
	return nil
}

// throttle bounds the input held for the write stage: while the held
// batches exceed the budget it waits for the write stage to apply emitted
// decisions, until they fit or nothing is pending (what stays held then
// waits for the strategy, which needs more input to decide it).
func (m *mixRun) throttle() error {
	for m.heldBytes.Load() > m.cfg.HeldBudget && m.pending.Load() > 0 {
		select {
		case <-m.progressed:
		case <-m.ctx.Done():
			return context.Cause(m.ctx)
		}
	}
	return nil
}

// encode describes the task's columns of b for the encoder (no copy).
func (m *mixRun) encode(b *segread.Batch) ([]abi.ColumnData, error) {
	out := make([]abi.ColumnData, len(m.task.Columns))
	for i, c := range m.task.Columns {
		if c.FieldID == abi.FieldIDRowSize {
			out[i] = abi.RowSizeData(b.RowSizes)
			continue
		}
		arr, ok := b.Columns[c.FieldID]
		if !ok {
			return nil, fmt.Errorf("batch of rows %d+%d has no column for field %d", b.FirstRow, b.Rows, c.FieldID)
		}
		cd, err := abiarrow.Column(c.FieldID, arr)
		if err != nil {
			return nil, err
		}
		cd.Nullable = cd.Nullable || c.Nullable
		out[i] = cd
	}
	return out, nil
}

// emit checks decisions against the task and what was delivered, and
// hands runs to the write stage. It runs inside a guest call.
func (m *mixRun) emit(kind abi.EmitKind, data []byte) error {
	switch kind {
	case abi.EmitRuns:
		runs, err := abi.DecodeRuns(nil, data)
		if err != nil {
			return err
		}
		item := writeItem{runs: runs}
		for i, r := range runs {
			if err := m.checkRun(i, r); err != nil {
				return err
			}
			mark, ok, err := m.advance(r)
			if err != nil {
				return err
			}
			if ok {
				item.release = append(item.release, mark)
			}
		}
		select {
		case m.writeCh <- item:
			m.pending.Add(1)
			return nil
		case <-m.ctx.Done():
			return fmt.Errorf("write stage stopped: %w", context.Cause(m.ctx))
		}
	case abi.EmitCounters:
		cs, err := abi.DecodeCounters(nil, data)
		if err != nil {
			return err
		}
		for i, c := range cs {
			if err := m.drops.report(i, c); err != nil {
				return err
			}
		}
		return nil
	case abi.EmitL0:
		return errors.New("L0 pairs emitted in a mix task")
	}
	return fmt.Errorf("unknown decision kind %d", uint32(kind))
}

// checkRun applies abi.CheckRuns's rules plus what only the host knows:
// rows delivered, not already released, not covered twice.
func (m *mixRun) checkRun(i int, r abi.Run) error {
	if err := abi.CheckRuns(m.task, []abi.Run{r}); err != nil {
		return fmt.Errorf("run %d: %w", i, err)
	}
	s, lo, hi := r.Segment, uint64(r.FirstRow), uint64(r.FirstRow)+uint64(r.Count)
	if hi > m.delivered[s] {
		return fmt.Errorf("run %d covers rows [%d, %d) of segment %d, only %d delivered so far", i, lo, hi, s, m.delivered[s])
	}
	if o := int64(r.Output); o < m.output || o > m.output+1 {
		return fmt.Errorf("run %d targets output %d after output %d; outputs must be filled one after another from 0 (this host closes an output when the next one starts)", i, o, m.output)
	}
	m.output = max(m.output, int64(r.Output))
	if lo < m.released[s] {
		return fmt.Errorf("run %d covers rows [%d, %d) of segment %d, but decisions already moved past row %d (runs of a segment must not go back to an earlier batch)", i, lo, hi, s, m.released[s])
	}
	bits := m.covered[s]
	for row := lo; row < hi; row++ {
		w, bit := row/64, uint64(1)<<(row%64)
		if bits[w]&bit != 0 {
			return fmt.Errorf("run %d covers row %d of segment %d a second time", i, row, s)
		}
		bits[w] |= bit
	}
	return nil
}

// advance moves the segment's decision point to r's start and returns a
// release mark when whole batches are now behind it. Their rows no run
// covered are dropped for good; they are classified for the counter check
// now, while the batches are still held.
func (m *mixRun) advance(r abi.Run) (releaseMark, bool, error) {
	s := r.Segment
	m.maxStart[s] = max(m.maxStart[s], uint64(r.FirstRow))
	ends := m.ends[s]
	k := 0
	for k < len(ends) && ends[k] <= m.maxStart[s] {
		k++
	}
	if k == 0 {
		return releaseMark{}, false, nil
	}
	from, upTo := m.released[s], ends[k-1]
	m.released[s] = upTo
	m.ends[s] = ends[k:]
	if err := m.classifyHeld(s, from, upTo); err != nil {
		return releaseMark{}, false, err
	}
	return releaseMark{seg: s, upTo: upTo}, true, nil
}

// classifyHeld classifies rows [from, to) of segment s for the counter
// check. The batches holding them stay held until the write stage applies
// the release mark for to, which is not queued yet.
func (m *mixRun) classifyHeld(s uint32, from, to uint64) error {
	m.mu.Lock()
	m.scratch = m.scratch[:0]
	for _, b := range m.held[s] {
		if uint64(b.FirstRow) < to && uint64(b.FirstRow)+uint64(b.Rows) > from {
			m.scratch = append(m.scratch, b)
		}
	}
	m.mu.Unlock()
	err := m.drops.classify(s, m.scratch, m.covered[s], from, to)
	clear(m.scratch)
	return err
}

// checkDrops classifies the rows still held when the task's decisions are
// all applied and checks every segment's counters (ABI.md section 9.5).
func (m *mixRun) checkDrops() error {
	for s := range m.held {
		if err := m.classifyHeld(uint32(s), m.released[s], m.delivered[s]); err != nil {
			return stageErr("strategy", err)
		}
	}
	return stageErr("strategy", m.drops.check())
}

// writeStage applies runs to the writer in emitted order and releases
// batches behind the decisions. After a failure it only drains.
func (m *mixRun) writeStage() {
	for item := range m.writeCh {
		m.writeItem(item)
		m.pending.Add(-1)
		select {
		case m.progressed <- struct{}{}:
		default:
		}
	}
}

// writeItem applies one item: its runs, then its releases.
func (m *mixRun) writeItem(item writeItem) {
	if m.fail.get() != nil {
		return
	}
	for _, r := range item.runs {
		if err := m.apply(r); err != nil {
			if m.ctx.Err() == nil { // else the driver reports why the run stopped
				m.fail.set(stageErr("write", err))
			}
			return
		}
	}
	for _, mk := range item.release {
		m.mu.Lock()
		h := m.held[mk.seg]
		k := 0
		for k < len(h) && uint64(h[k].FirstRow)+uint64(h[k].Rows) <= mk.upTo {
			m.heldBytes.Add(-h[k].Bytes)
			h[k].Release()
			h[k] = nil // the backing array outlives the slice's front
			k++
		}
		m.held[mk.seg] = h[k:]
		m.mu.Unlock()
	}
}

// apply appends the rows of r from the held batches to its output.
func (m *mixRun) apply(r abi.Run) error {
	m.mu.Lock()
	held := m.held[r.Segment]
	m.mu.Unlock()
	lo, hi := int64(r.FirstRow), int64(r.FirstRow)+int64(r.Count)
	for _, b := range held {
		bEnd := b.FirstRow + int64(b.Rows)
		if bEnd <= lo || b.FirstRow >= hi {
			continue
		}
		from, to := max(lo, b.FirstRow), min(hi, bEnd)
		off, cnt := int(from-b.FirstRow), int(to-from)
		if err := m.writer.Append(m.ctx, int(r.Output), b.Columns, off, cnt); err != nil {
			return err
		}
		var bytes int64
		for _, sz := range b.RowSizes[off : off+cnt] {
			bytes += int64(sz)
		}
		m.rowsWritten.Add(int64(cnt))
		m.bytesWritten.Add(bytes)
		lo = to
	}
	if lo < hi {
		return fmt.Errorf("rows [%d, %d) of segment %d are not held (internal error)", lo, hi, r.Segment)
	}
	return nil
}
