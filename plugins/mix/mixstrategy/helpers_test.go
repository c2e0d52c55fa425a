//go:build !wasip1

package mixstrategy_test

import (
	"encoding/json"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

const pkField = 100

// taskOf returns a mix task with the given segments (all inputs), pk type,
// 10-byte rows by default and room for 16 outputs; mutate adjusts it.
func taskOf(pkType abi.Type, segs []abi.Segment, mutate func(*abi.Task)) *abi.Task {
	for i := range segs {
		if segs[i].ID == 0 {
			segs[i].ID = int64(1000 + i)
		}
		if segs[i].Role == "" {
			segs[i].Role = abi.RoleInput
		}
	}
	t := &abi.Task{ABI: 1, PlanID: 7, Type: abi.CompactionMix, PKFieldID: pkField, PKType: pkType, Segments: segs,
		Columns: []abi.ColumnInfo{{FieldID: pkField, Name: "pk", Type: pkType}, {FieldID: 1, Name: "ts", Type: abi.TypeInt64},
			{FieldID: -1, Name: "size", Type: abi.TypeUint32}},
		NowMs: 1_764_057_600_000, MaxSize: 1 << 30, MaxOutputs: 16, MemoryGrant: 256 << 20, BatchRows: 8192, MaxBatchBytes: 1 << 24}
	if mutate != nil {
		mutate(t)
	}
	return t
}

func taskBytes(t testing.TB, task *abi.Task) []byte {
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkData encodes []int64 or []string keys as the pk column.
func pkData(pks any) abi.ColumnData {
	switch v := pks.(type) {
	case []int64:
		return abi.Int64Data(pkField, v)
	case []string:
		return abi.StringData(pkField, v)
	}
	panic("pks must be []int64 or []string")
}

func rowsBatch(t testing.TB, seg uint32, first uint64, pks any, ts []int64, sizes []uint32) []byte {
	if sizes == nil {
		sizes = make([]uint32, len(ts))
		for i := range sizes {
			sizes[i] = 10
		}
	}
	b, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Segment: seg, FirstRow: first, Rows: len(ts)},
		[]abi.ColumnData{pkData(pks), abi.Int64Data(abi.FieldIDTimestamp, ts), abi.RowSizeData(sizes)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func delBatch(t testing.TB, seg uint32, first uint64, pks any, ts []int64) []byte {
	b, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Segment: seg, FirstRow: first, Rows: len(ts)},
		[]abi.ColumnData{pkData(pks), abi.Int64Data(abi.FieldIDTimestamp, ts)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// same returns n copies of v.
func same[T any](n int, v T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func run(t testing.TB, task *abi.Task, dels, batches [][]byte) (*sdk.Collector, error) {
	t.Helper()
	return sdk.RunTask(mixstrategy.New(), taskBytes(t, task), dels, batches)
}

func mustRun(t testing.TB, task *abi.Task, dels, batches [][]byte) *sdk.Collector {
	t.Helper()
	c, err := run(t, task, dels, batches)
	if err != nil {
		t.Fatal(err)
	}
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	if err := abi.CheckRuns(task, c.Runs); err != nil {
		t.Fatal(err)
	}
	return c
}

func asABI(err error, target **abi.Error) bool {
	ae, ok := err.(*abi.Error)
	if ok {
		*target = ae
	}
	return ok
}

// setLogger collects native Logf lines into *dst (nil stops collecting).
func setLogger(dst *[]string) {
	if dst == nil {
		sdk.SetNativeLogger(nil)
		return
	}
	sdk.SetNativeLogger(func(_ abi.LogLevel, m string) { *dst = append(*dst, m) })
}

// coalesce joins runs that continue each other (same segment and output,
// next row): the decisions as rows, independent of where batches ended.
func coalesce(runs []abi.Run) []abi.Run {
	var out []abi.Run
	for _, r := range runs {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.Segment == r.Segment && p.Output == r.Output && p.FirstRow+p.Count == r.FirstRow {
				p.Count += r.Count
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
