// Package l0strategy is the bundled L0 delete-compaction strategy: it
// routes the delete records of a plan's L0 segments to the target segments
// they may hit. A delete goes to a target unless the target's known pk
// range excludes it (pruned in the guest) or the target's bloom filter
// rules it out (probed in the host through Emitter.Probe). As in Milvus,
// timestamps are not compared, one delete may go to several targets, and
// each target receives its records in delete (dml) order. It implements
// sdk.Strategy; package main in plugins/l0 registers it for the wasm
// build, and a host can link it natively.
package l0strategy

import (
	"errors"
	"math"
	"strconv"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// Name and Version identify the strategy in its manifest and in the plugin
// registry (l0@1.0.0.wasm). Version can be set at build time, so an operator
// can ship a re-versioned build without a source change:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared \
//	  -ldflags "-X github.com/compacthost/compacthost/plugins/l0/l0strategy.Version=1.0.1" ./plugins/l0
const Name = "l0"

var Version = "1.0.0"

// ProbeBatch is the number of (delete, target) pairs per probe call, the
// batch size Milvus applies bloom filters in
// (dataNode.compaction.levelzero bloom_filter_apply_batch_size).
const ProbeBatch = 10000

// Strategy is the L0 strategy. Use New. It runs one task at a time and may
// run many tasks in sequence.
type Strategy struct {
	eng engine
}

type engine interface {
	deletes(d *abi.Deletes, out sdk.Emitter) error
	finish(out sdk.Emitter) error
}

// New returns an L0 Strategy.
func New() *Strategy { return &Strategy{} }

// Manifest implements sdk.Strategy.
func (s *Strategy) Manifest() sdk.Manifest {
	return sdk.Manifest{
		ABI: abi.Version, Name: Name, Version: Version,
		Handles:   []string{abi.CompactionL0},
		Fields:    []string{abi.FieldPK, abi.FieldTS},
		MinMemory: 32 << 20,
	}
}

// Begin implements sdk.Strategy: it reads the targets' pk ranges.
func (s *Strategy) Begin(t *sdk.Task) error {
	s.eng = nil
	if total := t.TotalDeletes(); total > math.MaxUint32 {
		return sdk.Errorf(abi.StatusUnsupported, "l0: plan %d has %d delete records; ABI v1 indexes at most 2^32-1", t.PlanID, total)
	}
	var err error
	switch t.PKType {
	case abi.TypeInt64:
		s.eng, err = newRouter(t, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) })
	case abi.TypeString:
		s.eng, err = newRouter(t, func(v string) (string, error) { return v, nil })
	default:
		err = sdk.Errorf(abi.StatusUnsupported, "l0: plan %d: primary key type %s is not supported (want int64 or string)", t.PlanID, t.PKType)
	}
	return err
}

// DeletesTo implements sdk.DeletesEmitter: it routes each delete batch as it
// arrives (range pruning here, bloom probes in the host, pairs emitted in
// delete order), so the strategy holds at most one probe batch of pairs,
// never the whole delete list.
func (s *Strategy) DeletesTo(d *sdk.DeleteBatch, out sdk.Emitter) error {
	if s.eng == nil {
		return sdk.Errorf(abi.StatusBadInput, "l0: deletes before begin")
	}
	return s.eng.deletes(d, out)
}

// Deletes implements sdk.Strategy. The SDK calls DeletesTo instead, which
// has the Emitter routing needs; Deletes exists to satisfy the interface.
func (s *Strategy) Deletes(d *sdk.DeleteBatch) error {
	return sdk.Errorf(abi.StatusError, "l0: deletes need an emitter: drive the strategy through DeletesTo")
}

// Batch implements sdk.Strategy. An L0 task has no rows.
func (s *Strategy) Batch(b *sdk.Batch, out sdk.Emitter) error {
	return sdk.Errorf(abi.StatusBadInput, "l0: got a rows batch of segment %d; an L0 task delivers only deletes", b.Segment)
}

// Finish implements sdk.Strategy: it routes every delete and emits the L0
// pairs.
func (s *Strategy) Finish(out sdk.Emitter) error {
	if s.eng == nil {
		return sdk.Errorf(abi.StatusBadInput, "l0: finish before begin")
	}
	err := s.eng.finish(out)
	s.eng = nil
	return err
}

var (
	_ sdk.Strategy       = (*Strategy)(nil)
	_ sdk.DeletesEmitter = (*Strategy)(nil)
)

// target is a segment deletes may be routed to, with its pk range if known.
type target[K pkey.Key] struct {
	seg    uint32
	lo, hi K
	ranged bool
}

// router is the state of one L0 task with primary keys of type K.
type router[K pkey.Key] struct {
	task    *sdk.Task
	targets []target[K]
	next    uint64 // deletes routed so far: the global index of the next one
	scratch []K
	pending []abi.L0Pair
	kept    []abi.L0Pair
	hits    []byte
	noProbe bool // the host has no bloom filters for this task

	candidates, avoided, routed uint64
}

func newRouter[K pkey.Key](t *sdk.Task, parse func(string) (K, error)) (*router[K], error) {
	r := &router[K]{task: t}
	for i := range t.Segments {
		s := &t.Segments[i]
		if s.Role != abi.RoleTarget {
			continue
		}
		tg := target[K]{seg: uint32(i)}
		if s.PKMin != nil && s.PKMax != nil {
			lo, err1 := parse(*s.PKMin)
			hi, err2 := parse(*s.PKMax)
			if err := errors.Join(err1, err2); err != nil {
				return nil, sdk.Errorf(abi.StatusBadInput, "l0: plan %d: target segment %d (id %d): pk range [%q, %q] is not %s: %v",
					t.PlanID, i, s.ID, *s.PKMin, *s.PKMax, t.PKType, err)
			}
			tg.lo, tg.hi, tg.ranged = lo, hi, true
		}
		r.targets = append(r.targets, tg)
	}
	r.pending = make([]abi.L0Pair, 0, ProbeBatch)
	r.hits = make([]byte, (ProbeBatch+7)/8)
	return r, nil
}

func (r *router[K]) deletes(d *abi.Deletes, out sdk.Emitter) error {
	t := r.task
	if role := t.Segments[d.Segment].Role; role != abi.RoleL0 {
		return sdk.Errorf(abi.StatusBadInput, "l0: plan %d: deletes of segment %d (id %d), whose role is %q, not l0",
			t.PlanID, d.Segment, t.Segments[d.Segment].ID, role)
	}
	if d.FirstRow != r.next {
		return sdk.Errorf(abi.StatusBadInput, "l0: plan %d: deletes batch starts at delete %d, expected %d", t.PlanID, d.FirstRow, r.next)
	}
	r.scratch = pkey.View(d.PKs(), r.scratch)
	for i, pk := range r.scratch {
		idx := uint32(d.FirstRow) + uint32(i)
		for j := range r.targets {
			tg := &r.targets[j]
			if tg.ranged && (pk < tg.lo || pk > tg.hi) {
				r.avoided++
				continue
			}
			r.pending = append(r.pending, abi.L0Pair{Delete: idx, Target: tg.seg})
			if len(r.pending) == ProbeBatch {
				if err := r.resolve(out); err != nil {
					return err
				}
			}
		}
	}
	r.next += uint64(len(r.scratch))
	return nil
}

func (r *router[K]) finish(out sdk.Emitter) error {
	if err := r.resolve(out); err != nil {
		return err
	}
	note := ""
	if r.noProbe {
		note = " (host has no bloom filters: every candidate kept)"
	}
	sdk.Logf(abi.LogInfo, "l0: plan %d: %d deletes, %d targets, %d candidate pairs, %d probes avoided by pk range, %d hits%s",
		r.task.PlanID, r.next, len(r.targets), r.candidates, r.avoided, r.routed, note)
	return nil
}

func (r *router[K]) resolve(out sdk.Emitter) error {
	if len(r.pending) == 0 {
		return nil
	}
	r.candidates += uint64(len(r.pending))
	keep := r.pending
	if !r.noProbe {
		clear(r.hits) // a host that only sets bits must not see stale ones
		err := out.Probe(r.pending, r.hits)
		var ae *abi.Error
		switch {
		case err == nil:
			r.kept = r.kept[:0]
			for i, p := range r.pending {
				if r.hits[i>>3]&(1<<(i&7)) != 0 {
					r.kept = append(r.kept, p)
				}
			}
			keep = r.kept
		case errors.As(err, &ae) && ae.Status == abi.StatusUnsupported:
			r.noProbe = true
		default:
			return err
		}
	}
	r.pending = r.pending[:0]
	if len(keep) == 0 {
		return nil
	}
	r.routed += uint64(len(keep))
	return out.L0(keep)
}
