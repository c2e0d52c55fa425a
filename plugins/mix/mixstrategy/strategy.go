// Package mixstrategy is the bundled mix-compaction strategy: it merges the
// input segments of a Milvus mix compaction, drops rows deleted by each
// segment's own deltalogs and rows expired by the collection TTL, splits
// the survivors into outputs by size, and k-way merges by primary key when
// every input is sorted. It implements sdk.Strategy; package main in
// plugins/mix registers it for the wasm build, and a host can link it
// natively.
//
// Semantics (Milvus internal/compaction and datanode/compactor):
//
//   - Deletes of segment s apply only to rows of s. Per pk the newest delete
//     ts d counts; a row (pk, ts) is deleted iff ts < d (an upsert writes
//     delete and insert with the same ts, and the new row survives).
//   - A row not deleted is expired iff collection_ttl_ns > 0 and
//     now_ms - (ts >> 18) >= ttl_ms, ttl_ms = collection_ttl_ns / 1e6.
//   - Surviving rows go to output 0 until it holds max_size bytes (by the
//     row-size column) or max_rows rows; then to output 1, and so on.
//   - With two or more inputs that are all sorted, rows are merged by pk
//     (ties by segment index, then row index); otherwise they keep their
//     arrival order.
package mixstrategy

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
)

// Name and Version identify the strategy in its manifest and in the plugin
// registry (mix@1.0.0.wasm). Version can be set at build time, so an operator
// can ship a re-versioned build without a source change:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared \
//	  -ldflags "-X github.com/compacthost/compacthost/plugins/mix/mixstrategy.Version=1.0.1" ./plugins/mix
const Name = "mix"

var Version = "1.0.0"

// Strategy is the mix strategy. The zero value is not ready; use New. A
// Strategy runs one task at a time and may run many tasks in sequence.
type Strategy struct {
	eng engine
}

// engine is the per-task state, generic over the primary-key type.
type engine interface {
	deletes(d *abi.Deletes) error
	batch(b *abi.Batch, out sdk.Emitter) error
	finish(out sdk.Emitter) error
}

// New returns a mix Strategy.
func New() *Strategy { return &Strategy{} }

// Manifest implements sdk.Strategy.
func (s *Strategy) Manifest() sdk.Manifest {
	return sdk.Manifest{
		ABI: abi.Version, Name: Name, Version: Version,
		Handles:   []string{abi.CompactionMix},
		Fields:    []string{abi.FieldPK, abi.FieldTS, abi.FieldRowSize},
		MinMemory: 32 << 20,
		BatchRows: 8192,
	}
}

// Begin implements sdk.Strategy. It checks that the task delivers the
// columns the strategy needs and sizes the delete indexes.
func (s *Strategy) Begin(t *sdk.Task) error {
	s.eng = nil
	cols, err := findColumns(t)
	if err != nil {
		return err
	}
	switch t.PKType {
	case abi.TypeInt64:
		s.eng, err = newMixer[int64](t, cols)
	case abi.TypeString:
		s.eng, err = newMixer[string](t, cols)
	default:
		return sdk.Errorf(abi.StatusUnsupported, "mix: plan %d: primary key type %s is not supported (want int64 or string)", t.PlanID, t.PKType)
	}
	return err
}

// Deletes implements sdk.Strategy.
func (s *Strategy) Deletes(d *sdk.DeleteBatch) error {
	if s.eng == nil {
		return sdk.Errorf(abi.StatusBadInput, "mix: deletes before begin")
	}
	return s.eng.deletes(d)
}

// Batch implements sdk.Strategy.
func (s *Strategy) Batch(b *sdk.Batch, out sdk.Emitter) error {
	if s.eng == nil {
		return sdk.Errorf(abi.StatusBadInput, "mix: batch before begin")
	}
	return s.eng.batch(b, out)
}

// Finish implements sdk.Strategy.
func (s *Strategy) Finish(out sdk.Emitter) error {
	if s.eng == nil {
		return sdk.Errorf(abi.StatusBadInput, "mix: finish before begin")
	}
	err := s.eng.finish(out)
	s.eng = nil
	return err
}

// columns are the positions of the needed columns in every rows batch.
type columns struct{ pk, ts, size int }

func findColumns(t *sdk.Task) (columns, error) {
	var c columns
	need := []struct {
		id   int64
		typ  abi.Type
		what string
		dst  *int
	}{
		{t.PKFieldID, t.PKType, "primary key", &c.pk},
		{abi.FieldIDTimestamp, abi.TypeInt64, "timestamp", &c.ts},
		{abi.FieldIDRowSize, abi.TypeUint32, "row size", &c.size},
	}
	for _, n := range need {
		i, ok := t.ColumnIndex(n.id)
		if !ok {
			return c, sdk.Errorf(abi.StatusUnsupported, "mix: plan %d: the task delivers no %s column (field %d); the manifest asks for pk, ts and size", t.PlanID, n.what, n.id)
		}
		if got := t.Columns[i].Type; got != n.typ {
			return c, sdk.Errorf(abi.StatusUnsupported, "mix: plan %d: %s column (field %d) has type %s, want %s", t.PlanID, n.what, n.id, got, n.typ)
		}
		*n.dst = i
	}
	return c, nil
}

// outputError is the failure when the survivors need more outputs than the
// plan pre-allocated.
func outputError(t *sdk.Task, out uint32) error {
	return sdk.Errorf(abi.StatusError, "mix: plan %d: surviving rows need output %d but max_outputs is %d (max_size %d bytes, max_rows %d)",
		t.PlanID, out, t.MaxOutputs, t.MaxSize, t.MaxRows)
}

var _ sdk.Strategy = (*Strategy)(nil)

func segName(t *sdk.Task, s uint32) string {
	return fmt.Sprintf("segment %d (id %d)", s, t.Segments[s].ID)
}
