//go:build !wasip1

package l0strategy_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
)

const pkField = 100

// P is an L0 pair written positionally: delete index, target segment.
type P struct{ Delete, Target uint32 }

func pairs(ps []abi.L0Pair) []P {
	out := []P{}
	for _, p := range ps {
		out = append(out, P(p))
	}
	return out
}

func str(s string) *string { return &s }

// l0Task: segments with role "l0" (deletes > 0) and "target" (ranges
// given as [2]string, nil = unknown).
func l0Task(t testing.TB, pkType abi.Type, l0Deletes []uint64, ranges [][]string) *abi.Task {
	task := &abi.Task{ABI: 1, PlanID: 9, Type: abi.CompactionL0, PKFieldID: pkField, PKType: pkType,
		Columns:     []abi.ColumnInfo{{FieldID: pkField, Name: "pk", Type: pkType}, {FieldID: 1, Name: "ts", Type: abi.TypeInt64}},
		MemoryGrant: 64 << 20, BatchRows: 8192, MaxBatchBytes: 1 << 20}
	for i, n := range l0Deletes {
		task.Segments = append(task.Segments, abi.Segment{ID: int64(100 + i), Level: "L0", Role: abi.RoleL0, Deletes: n})
	}
	for i, r := range ranges {
		s := abi.Segment{ID: int64(200 + i), Level: "L1", Role: abi.RoleTarget, Rows: 1000}
		if r != nil {
			s.PKMin, s.PKMax = str(r[0]), str(r[1])
		}
		task.Segments = append(task.Segments, s)
	}
	return task
}

func delBatch(t testing.TB, seg uint32, first uint64, pks any) []byte {
	var pk abi.ColumnData
	n := 0
	switch v := pks.(type) {
	case []int64:
		pk, n = abi.Int64Data(pkField, v), len(v)
	case []string:
		pk, n = abi.StringData(pkField, v), len(v)
	}
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = int64(1000 + first + uint64(i))
	}
	b, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Segment: seg, FirstRow: first, Rows: n},
		[]abi.ColumnData{pk, abi.Int64Data(abi.FieldIDTimestamp, ts)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runL0 drives the strategy natively; probe (may be nil = UNSUPPORTED)
// answers bloom probes.
func runL0(t testing.TB, task *abi.Task, dels [][]byte, probe func(p abi.L0Pair) bool) (*sdk.Collector, []string, error) {
	t.Helper()
	var logs []string
	sdk.SetNativeLogger(func(_ abi.LogLevel, m string) { logs = append(logs, m) })
	defer sdk.SetNativeLogger(nil)
	c := new(sdk.Collector)
	if probe != nil {
		c.ProbeFunc = func(ps []abi.L0Pair, hits []byte) error {
			if len(ps) > l0strategy.ProbeBatch {
				return fmt.Errorf("probe of %d pairs, more than %d", len(ps), l0strategy.ProbeBatch)
			}
			for i, p := range ps {
				if probe(p) {
					hits[i>>3] |= 1 << (i & 7)
				}
			}
			return nil
		}
	}
	d, err := sdk.NewDriver(l0strategy.New(), c)
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := json.Marshal(task)
	if err := d.Begin(tj); err != nil {
		return c, logs, err
	}
	for _, b := range dels {
		if err := d.Deletes(b); err != nil {
			return c, logs, err
		}
	}
	err = d.Finish()
	if err == nil && c.Err != nil {
		err = c.Err
	}
	if err == nil {
		err = abi.CheckL0Pairs(task, c.L0)
	}
	return c, logs, err
}

func all(abi.L0Pair) bool { return true }

// Targets 2 [10,20], 3 [15,30], 4 unknown; deletes 5, 12, 18, 25, 40 (two
// L0 segments). Range pruning avoids 7 probes.
func TestRangePruning(t *testing.T) {
	task := l0Task(t, abi.TypeInt64, []uint64{3, 2}, [][]string{{"10", "20"}, {"15", "30"}, nil})
	dels := [][]byte{delBatch(t, 0, 0, []int64{5, 12, 18}), delBatch(t, 1, 3, []int64{25, 40})}
	c, logs, err := runL0(t, task, dels, all)
	if err != nil {
		t.Fatal(err)
	}
	want := []P{{0, 4}, {1, 2}, {1, 4}, {2, 2}, {2, 3}, {2, 4}, {3, 3}, {3, 4}, {4, 4}}
	if got := pairs(c.L0); !reflect.DeepEqual(got, want) {
		t.Fatalf("pairs %v, want %v", got, want)
	}
	if len(logs) != 1 || logs[0] != "l0: plan 9: 5 deletes, 3 targets, 9 candidate pairs, 6 probes avoided by pk range, 9 hits" {
		t.Fatalf("logs %q", logs)
	}
}

// String keys compare bytewise: "100" lies in ["1", "2"].
func TestStringRanges(t *testing.T) {
	task := l0Task(t, abi.TypeString, []uint64{4}, [][]string{{"1", "2"}, {"b", "d"}})
	c, _, err := runL0(t, task, [][]byte{delBatch(t, 0, 0, []string{"100", "3", "c", "d"})}, all)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pairs(c.L0), []P{{0, 1}, {2, 2}, {3, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pairs %v, want %v", got, want)
	}
}

// The probe bitmap decides; UNSUPPORTED keeps every candidate.
func TestProbe(t *testing.T) {
	task := l0Task(t, abi.TypeInt64, []uint64{4}, [][]string{nil, nil})
	dels := [][]byte{delBatch(t, 0, 0, []int64{1, 2, 3, 4})}
	c, logs, err := runL0(t, task, dels, func(p abi.L0Pair) bool { return (p.Delete+p.Target)%2 == 0 })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pairs(c.L0), []P{{0, 2}, {1, 1}, {2, 2}, {3, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pairs %v, want %v", got, want)
	}
	if !strings.HasSuffix(logs[0], "8 candidate pairs, 0 probes avoided by pk range, 4 hits") {
		t.Fatalf("log %q", logs[0])
	}
	c, logs, err = runL0(t, task, dels, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairs(c.L0); len(got) != 8 || !strings.Contains(logs[0], "8 hits (host has no bloom filters: every candidate kept)") {
		t.Fatalf("pairs %v logs %q", got, logs)
	}
	// Nothing hits: no pairs at all.
	c, _, err = runL0(t, task, dels, func(abi.L0Pair) bool { return false })
	if err != nil || len(c.L0) != 0 {
		t.Fatalf("pairs %v, %v", c.L0, err)
	}
}

// Many deletes (several probe batches), random ranges and probe answers:
// pairs equal a plain model, each target's deletes strictly increase (dml
// order, no duplicates).
func TestRandomRouting(t *testing.T) {
	most := 0
	defer func() {
		if most <= l0strategy.ProbeBatch {
			t.Errorf("no seed produced more than one probe batch (most pairs %d)", most)
		}
	}()
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 0x6c30))
		nl0, ntg := 1+r.IntN(3), 1+r.IntN(6)
		var counts []uint64
		var ranges [][]string
		var keys []int64
		var dels [][]byte
		for s := range nl0 {
			n := r.IntN(6000)
			counts = append(counts, uint64(n))
			pks := make([]int64, n)
			for i := range pks {
				pks[i] = r.Int64N(1000) - 100
			}
			for lo := 0; lo < n; lo += 777 {
				hi := min(n, lo+777)
				dels = append(dels, delBatch(t, uint32(s), uint64(len(keys)+lo), pks[lo:hi]))
			}
			keys = append(keys, pks...)
		}
		for range ntg {
			if r.IntN(3) == 0 {
				ranges = append(ranges, nil)
				continue
			}
			lo := r.Int64N(1000) - 100
			ranges = append(ranges, []string{fmt.Sprint(lo), fmt.Sprint(lo + r.Int64N(500))})
		}
		task := l0Task(t, abi.TypeInt64, counts, ranges)
		bloom := func(p abi.L0Pair) bool { return (uint64(keys[p.Delete])*2654435761+uint64(p.Target))%3 != 0 }
		c, _, err := runL0(t, task, dels, bloom)
		if err != nil {
			t.Fatal(err)
		}
		var want []P
		for i, k := range keys {
			for j, rg := range ranges {
				p := abi.L0Pair{Delete: uint32(i), Target: uint32(nl0 + j)}
				if rg != nil && (k < atoi(rg[0]) || k > atoi(rg[1])) || !bloom(p) {
					continue
				}
				want = append(want, P(p))
			}
		}
		got := pairs(c.L0)
		most = max(most, len(got))
		if len(want) == 0 {
			want = []P{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: %d pairs, model %d", seed, len(got), len(want))
		}
		last := map[uint32]int64{}
		for _, p := range got {
			if l, ok := last[p.Target]; ok && int64(p.Delete) <= l {
				t.Fatalf("seed %d: target %d gets delete %d after %d", seed, p.Target, p.Delete, l)
			}
			last[p.Target] = int64(p.Delete)
		}
	}
}

func atoi(s string) int64 {
	var v int64
	fmt.Sscan(s, &v)
	return v
}

func TestL0BadInput(t *testing.T) {
	bad := l0Task(t, abi.TypeInt64, []uint64{1}, [][]string{{"x", "10"}})
	_, _, err := runL0(t, bad, nil, all)
	if err == nil || !strings.Contains(err.Error(), `target segment 1 (id 200): pk range ["x", "10"] is not int64`) {
		t.Errorf("bad range: %v", err)
	}
	task := l0Task(t, abi.TypeInt64, []uint64{1}, [][]string{nil})
	task.Segments[1].Deletes = 1
	_, _, err = runL0(t, task, [][]byte{delBatch(t, 1, 0, []int64{1})}, all)
	if err == nil || !strings.Contains(err.Error(), `deletes of segment 1 (id 200), whose role is "target", not l0`) {
		t.Errorf("target deletes: %v", err)
	}
}

// Deletes are routed while they stream in: once a probe batch of candidate
// pairs is full, its hits are emitted before Finish, so the strategy never
// holds the whole delete list.
func TestRoutesWhileDeletesStream(t *testing.T) {
	n := l0strategy.ProbeBatch + 2000
	task := l0Task(t, abi.TypeInt64, []uint64{uint64(n)}, [][]string{nil})
	pks := make([]int64, n)
	for i := range pks {
		pks[i] = int64(i)
	}
	c := new(sdk.Collector)
	c.ProbeFunc = func(ps []abi.L0Pair, hits []byte) error {
		for i := range ps {
			hits[i>>3] |= 1 << (i & 7)
		}
		return nil
	}
	d, err := sdk.NewDriver(l0strategy.New(), c)
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := json.Marshal(task)
	if err := d.Begin(tj); err != nil {
		t.Fatal(err)
	}
	if err := d.Deletes(delBatch(t, 0, 0, pks)); err != nil {
		t.Fatal(err)
	}
	if len(c.L0) != l0strategy.ProbeBatch {
		t.Fatalf("after the deletes batch %d pairs were emitted, want the first full probe batch of %d", len(c.L0), l0strategy.ProbeBatch)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(c.L0) != n {
		t.Fatalf("after finish %d pairs, want %d", len(c.L0), n)
	}
	for i, p := range c.L0 {
		if p.Delete != uint32(i) || p.Target != 1 {
			t.Fatalf("pair %d is %+v, want delete %d to target 1 in delete order", i, p, i)
		}
	}
}
