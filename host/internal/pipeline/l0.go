package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/statslog"
)

// l0Run is the state of one L0 attempt. The emit and probe callbacks run
// inside guest calls on the driving goroutine.
type l0Run struct {
	p     *Plan
	task  *abi.Task
	all   *deltalog.Deletes   // every L0 delete record, by global delete index
	stats [][]*statslog.Stats // per task segment: a target's pk stats
	picks map[uint32][]uint32 // target segment index -> delete indexes, in emitted order
	seen  map[abi.L0Pair]bool // pairs emitted so far

	probePairs []abi.L0Pair // decode buffer reused across probe calls
}

func runL0(ctx context.Context, p *Plan, cfg Config, start Start) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	segs := p.GetSegmentBinlogs()
	l := &l0Run{p: p, stats: make([][]*statslog.Stats, len(segs)), picks: map[uint32][]uint32{}, seen: map[abi.L0Pair]bool{}}
	sink := &Sink{emit: l.emit, probe: l.probe}
	guest, err := start(ctx, sink)
	if err != nil {
		return nil, stageErr("strategy", err)
	}
	man := guest.Manifest()
	if !man.HandlesType(abi.CompactionL0) {
		return nil, stageErr("setup", fmt.Errorf("strategy %s@%s does not handle L0 compaction (handles %v)", man.Name, man.Version, man.Handles))
	}
	dels, err := readAllDeletes(ctx, cfg.Store, p.PK.GetDataType(), segs, p.L0Segs, cfg.ReadParallelism)
	if err != nil {
		return nil, stageErr("read", err)
	}
	if err := l.readStats(ctx, cfg, segs); err != nil {
		return nil, stageErr("read", err)
	}
	l.all = &deltalog.Deletes{PKType: p.PK.GetDataType()}
	l.task = newTask(p, nil, TaskParams{Grant: cfg.Grant, BatchRows: cfg.BatchRows})
	for i, s := range segs {
		seg := abi.Segment{ID: s.GetSegmentID(), Level: levelName(s.GetLevel())}
		if d := dels[i]; d != nil {
			seg.Role, seg.Deletes = abi.RoleL0, uint64(d.Len())
			if err := l.all.Append(d); err != nil {
				return nil, stageErr("read", fmt.Errorf("segment %d: %w", s.GetSegmentID(), err))
			}
		} else {
			seg.Role = abi.RoleTarget
			seg.PKMin, seg.PKMax = pkRange(l.stats[i])
		}
		l.task.Segments = append(l.task.Segments, seg)
	}
	if err := beginTask(ctx, guest, l.task); err != nil {
		return nil, stageErr("strategy", err)
	}
	var next uint64
	for _, i := range p.L0Segs {
		if err := sendDeletes(ctx, guest, p.PK.GetFieldID(), uint32(i), dels[i], &next, cfg.BatchRows); err != nil {
			return nil, stageErr("strategy", err)
		}
	}
	progress := Progress{PlanID: p.GetPlanID(), Stage: "deletes", DeletesRead: int64(next)}
	if cfg.Progress != nil {
		cfg.Progress(progress)
	}
	if err := guest.Finish(ctx); err != nil {
		return nil, stageErr("strategy", err)
	}
	out, routed, err := l.write(ctx, cfg)
	if err != nil {
		return nil, stageErr("write", err)
	}
	progress.Stage, progress.RowsWritten = "done", routed
	if cfg.Progress != nil {
		cfg.Progress(progress)
	}
	return &Result{
		Result: &datapb.CompactionPlanResult{PlanID: p.GetPlanID(), State: datapb.CompactionTaskState_completed,
			Channel: p.GetChannel(), Type: p.GetType(), Segments: out},
		Counts: Counts{Deletes: int64(next), Routed: routed},
	}, nil
}

// readStats reads every target's pk stats logs (only the compound file
// when present), at most ReadParallelism objects at a time.
func (l *l0Run) readStats(ctx context.Context, cfg Config, segs []*datapb.CompactionSegmentBinlogs) error {
	pkID := l.p.PK.GetFieldID()
	errs := make([]error, len(segs))
	sem := make(chan struct{}, max(cfg.ReadParallelism, 1))
	var wg sync.WaitGroup
	for _, i := range l.p.Targets {
		var keys []string
		for _, fb := range segs[i].GetField2StatslogPaths() {
			if fb.GetFieldID() != pkID {
				continue
			}
			for _, b := range fb.GetBinlogs() {
				keys = append(keys, b.GetLogPath())
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, key := range statslog.SelectKeys(keys) {
				st, err := readStatsObject(ctx, cfg.Store, key)
				if err != nil {
					errs[i] = fmt.Errorf("target segment %d: %w", segs[i].GetSegmentID(), err)
					return
				}
				l.stats[i] = append(l.stats[i], st...)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func readStatsObject(ctx context.Context, store objstore.Store, key string) ([]*statslog.Stats, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("stats log %q: %w", key, err)
	}
	return statslog.Decode(key, data)
}

// pkRange is the union of the stats' pk ranges, when every one has one.
func pkRange(stats []*statslog.Stats) (lo, hi *string) {
	if len(stats) == 0 {
		return nil, nil
	}
	var minPK, maxPK statslog.PK
	for k, s := range stats {
		if !s.HasRange {
			return nil, nil
		}
		if s.PKType == schemapb.DataType_VarChar {
			if k == 0 || s.Min.Str < minPK.Str {
				minPK.Str = s.Min.Str
			}
			if k == 0 || s.Max.Str > maxPK.Str {
				maxPK.Str = s.Max.Str
			}
			continue
		}
		if k == 0 || s.Min.Int < minPK.Int {
			minPK.Int = s.Min.Int
		}
		if k == 0 || s.Max.Int > maxPK.Int {
			maxPK.Int = s.Max.Int
		}
	}
	if stats[0].PKType == schemapb.DataType_VarChar {
		return &minPK.Str, &maxPK.Str
	}
	a, b := strconv.FormatInt(minPK.Int, 10), strconv.FormatInt(maxPK.Int, 10)
	return &a, &b
}

func (l *l0Run) emit(kind abi.EmitKind, data []byte) error {
	switch kind {
	case abi.EmitL0:
		pairs, err := abi.DecodeL0Pairs(nil, data)
		if err != nil {
			return err
		}
		// One check per emitted buffer: checking pair by pair recomputed the task's delete total
		// for every pair, most of an L0 run's CPU at 1000 targets.
		if err := abi.CheckL0Pairs(l.task, pairs); err != nil {
			return err
		}
		for i, pr := range pairs {
			if l.seen[pr] {
				return fmt.Errorf("pair %d routes delete %d to segment %d a second time", i, pr.Delete, pr.Target)
			}
			l.seen[pr] = true
			l.picks[pr.Target] = append(l.picks[pr.Target], pr.Delete)
		}
		return nil
	case abi.EmitCounters:
		_, err := abi.DecodeCounters(nil, data)
		return err
	case abi.EmitRuns:
		return errors.New("runs emitted in an L0 task")
	}
	return fmt.Errorf("unknown decision kind %d", uint32(kind))
}

// probe answers the guest's bloom probes from the targets' stats: a pair
// hits when any stats object of its target may contain the delete's pk.
func (l *l0Run) probe(pairs, hits []byte) error {
	clear(hits)
	var err error
	if l.probePairs, err = abi.DecodeL0Pairs(l.probePairs[:0], pairs); err != nil {
		return err
	}
	if err := abi.CheckL0Pairs(l.task, l.probePairs); err != nil {
		return err
	}
	for i, pr := range l.probePairs {
		for _, s := range l.stats[pr.Target] {
			var hit bool
			if l.all.PKType == schemapb.DataType_VarChar {
				hit = s.MayContainVarChar(l.all.StrPKs[pr.Delete])
			} else {
				hit = s.MayContainInt64(l.all.IntPKs[pr.Delete])
			}
			if hit {
				hits[i/8] |= 1 << (i % 8)
				break
			}
		}
	}
	return nil
}

// write uploads one deltalog per target that received deletes, log IDs
// assigned in plan order so the bytes and keys do not depend on upload
// timing; on failure every deltalog it created is deleted.
func (l *l0Run) write(ctx context.Context, cfg Config) ([]*datapb.CompactionSegment, int64, error) {
	segs := l.p.GetSegmentBinlogs()
	ids := &segwrite.IDRange{Next: l.p.GetPreAllocatedLogIDs().GetBegin(), End: l.p.GetPreAllocatedLogIDs().GetEnd()}
	type job struct {
		seg   int
		logID int64
		d     *deltalog.Deletes
		fb    *datapb.FieldBinlog
		key   string
		err   error
	}
	var jobs []*job
	var routed int64
	for _, i := range l.p.Targets {
		picks := l.picks[uint32(i)]
		if len(picks) == 0 {
			continue
		}
		id, err := ids.Take(1)
		if err != nil {
			return nil, 0, fmt.Errorf("plan %d: %w", l.p.GetPlanID(), err)
		}
		d := &deltalog.Deletes{PKType: l.all.PKType}
		for _, k := range picks {
			var err error
			if d.PKType == schemapb.DataType_VarChar {
				err = d.AppendVarChar(l.all.StrPKs[k], l.all.Timestamps[k])
			} else {
				err = d.AppendInt64(l.all.IntPKs[k], l.all.Timestamps[k])
			}
			if err != nil {
				return nil, 0, err
			}
		}
		routed += int64(len(picks))
		jobs = append(jobs, &job{seg: i, logID: id, d: d})
	}
	run := func(j *job) {
		s := segs[j.seg]
		j.fb, j.key, j.err = segwrite.WriteDeltalog(ctx, segwrite.DeltalogConfig{
			Store: cfg.Store, Root: cfg.Root, CollectionID: s.GetCollectionID(), PartitionID: s.GetPartitionID(),
			SegmentID: s.GetSegmentID(), LogIDs: &segwrite.IDRange{Next: j.logID, End: j.logID + 1},
			Timestamp: uint64(l.p.GetStartTime()),
		}, j.d)
	}
	// The first deltalog is created alone: of two tasks given the same log
	// IDs, the one losing that key stops having created nothing.
	rest := jobs
	if len(jobs) > 0 {
		run(jobs[0])
		if rest = jobs[1:]; jobs[0].err != nil {
			rest = nil
		}
	}
	sem := make(chan struct{}, max(cfg.UploadParallelism, 1))
	var wg sync.WaitGroup
	for _, j := range rest {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			run(j)
		}()
	}
	wg.Wait()
	var errs []error
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		var made segwrite.Created
		for _, j := range jobs {
			if j.key != "" {
				made.Record(j.key, j.err)
			}
		}
		return nil, 0, cleanup(ctx, cfg, l.p.GetPlanID(), err, func(cctx context.Context) error {
			return made.Delete(cctx, cfg.Store, cfg.UploadParallelism)
		})
	}
	out := make([]*datapb.CompactionSegment, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, &datapb.CompactionSegment{SegmentID: segs[j.seg].GetSegmentID(),
			Deltalogs: []*datapb.FieldBinlog{j.fb}, Channel: l.p.GetChannel()})
	}
	return out, routed, nil
}
