//go:build !wasip1

package mixstrategy_test

import (
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// Sorted inputs are merged by pk, ties by segment then row, whatever order
// their batches arrive in.
func TestSortedMergeArrivalOrders(t *testing.T) {
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 4, Sorted: true}, {Rows: 4, Sorted: true}, {Rows: 1, Sorted: true}}, nil)
	ts := same(2, int64(1))
	s0a := rowsBatch(t, 0, 0, []int64{1, 3}, ts, nil)
	s0b := rowsBatch(t, 0, 2, []int64{5, 5}, ts, nil)
	s1a := rowsBatch(t, 1, 0, []int64{2, 3}, ts, nil)
	s1b := rowsBatch(t, 1, 2, []int64{5, 6}, ts, nil)
	s2 := rowsBatch(t, 2, 0, []int64{5}, ts[:1], nil)
	want := []R{{0, 0, 1, 0}, {1, 0, 1, 0}, {0, 1, 1, 0}, {1, 1, 1, 0}, {0, 2, 2, 0}, {1, 2, 1, 0}, {2, 0, 1, 0}, {1, 3, 1, 0}}
	orders := map[string][][]byte{
		"segment by segment": {s0a, s0b, s1a, s1b, s2},
		"reverse":            {s2, s1a, s1b, s0a, s0b},
		"interleaved":        {s2, s1a, s0a, s0b, s1b},
		"round robin":        {s0a, s1a, s2, s0b, s1b},
	}
	for name, batches := range orders {
		c := mustRun(t, task, nil, batches)
		check(t, name, c.Runs, c.Counters, want, nil)
	}
}

// A row equal to the last pk of a lower-numbered incomplete segment must
// wait: that segment may still deliver the same pk, which sorts first.
func TestSortedMergeTieWaits(t *testing.T) {
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 3, Sorted: true}, {Rows: 1, Sorted: true}}, nil)
	c := new(sdk.Collector)
	d, err := sdk.NewDriver(mixstrategy.New(), c)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		batch []byte
		runs  []R // emitted so far (as rows: see coalesce)
	}{
		{rowsBatch(t, 0, 0, []int64{1, 3}, []int64{1, 1}, nil), nil}, // segment 1 has not started: nothing is safe
		// pks 1 and 3 of segment 0 are emitted; segment 1's 3 waits, since
		// segment 0 may deliver another 3
		{rowsBatch(t, 1, 0, []int64{3}, []int64{1}, nil), []R{{0, 0, 2, 0}}},
		// segment 0 is complete: its 3 sorts first, then segment 1's
		{rowsBatch(t, 0, 2, []int64{3}, []int64{1}, nil), []R{{0, 0, 3, 0}, {1, 0, 1, 0}}},
	}
	if err := d.Begin(taskBytes(t, task)); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if err := d.Batch(s.batch); err != nil {
			t.Fatal(err)
		}
		check(t, "step "+string(rune('0'+i)), c.Runs, nil, s.runs, nil)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	check(t, "finish", c.Runs, nil, []R{{0, 0, 3, 0}, {1, 0, 1, 0}}, nil)
}

// String keys order bytewise ("10" < "9"); deletes and merge work on them.
func TestStringKeys(t *testing.T) {
	segs := func(sorted bool) []abi.Segment {
		return []abi.Segment{{Rows: 3, Sorted: sorted}, {Rows: 3, Deletes: 2, Sorted: sorted}}
	}
	dels := [][]byte{delBatch(t, 1, 0, []string{"c", "b"}, []int64{10, 10})}
	batches := [][]byte{
		rowsBatch(t, 1, 0, []string{"a", "c", "e"}, []int64{5, 5, 10}, nil),
		rowsBatch(t, 0, 0, []string{"10", "9", "b"}, []int64{5, 5, 5}, nil),
	}
	c := mustRun(t, taskOf(abi.TypeString, segs(true), nil), dels, batches)
	check(t, "sorted", c.Runs, c.Counters, []R{{0, 0, 2, 0}, {1, 0, 1, 0}, {0, 2, 1, 0}, {1, 2, 1, 0}}, []C{{Segment: 1, Deleted: 1}})
	c = mustRun(t, taskOf(abi.TypeString, segs(false), nil), dels, batches)
	check(t, "unsorted", c.Runs, c.Counters, []R{{1, 0, 1, 0}, {1, 2, 1, 0}, {0, 0, 3, 0}}, []C{{Segment: 1, Deleted: 1}})
}

func TestBadInput(t *testing.T) {
	sorted := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 3, Sorted: true}, {Rows: 1, Sorted: true}}, nil)
	cases := []struct {
		name    string
		task    *abi.Task
		batches [][]byte
		status  abi.Status
		msg     string
	}{
		{"not sorted", sorted, [][]byte{rowsBatch(t, 0, 0, []int64{1, 3, 2}, []int64{1, 1, 1}, nil)},
			abi.StatusBadInput, "segment 0 (id 1000) is marked sorted but row 2 has a smaller primary key than row 1"},
		{"no size column", taskOf(abi.TypeInt64, []abi.Segment{{Rows: 1}}, func(t *abi.Task) { t.Columns = t.Columns[:2] }), nil,
			abi.StatusUnsupported, "no row size column (field -1)"},
		{"pk type", taskOf(abi.TypeInt64, []abi.Segment{{Rows: 1}}, func(t *abi.Task) { t.Columns[0].Type = abi.TypeInt32 }), nil,
			abi.StatusUnsupported, "primary key column (field 100) has type int32, want int64"},
	}
	for _, c := range cases {
		_, err := run(t, c.task, nil, c.batches)
		var ae *abi.Error
		if !asABI(err, &ae) || ae.Status != c.status || !strings.Contains(ae.Message, c.msg) {
			t.Errorf("%s: %v, want %s with %q", c.name, err, c.status, c.msg)
		}
	}
}

// With round-robin arrival of interleaved sorted inputs, the merge emits
// as it goes: after each round, at most about one batch per segment is
// still held back.
func TestSortedMergeBuffersOnlyUnsafeRows(t *testing.T) {
	const nseg, rounds, per = 3, 20, 100
	segs := make([]abi.Segment, nseg)
	for s := range segs {
		segs[s] = abi.Segment{Rows: rounds * per, Sorted: true}
	}
	task := taskOf(abi.TypeInt64, segs, nil)
	c := new(sdk.Collector)
	d, err := sdk.NewDriver(mixstrategy.New(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Begin(taskBytes(t, task)); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for k := range rounds {
		for s := range nseg {
			pks := make([]int64, per)
			for i := range pks {
				pks[i] = int64((k*per+i)*nseg + s)
			}
			if err := d.Batch(rowsBatch(t, uint32(s), uint64(k*per), pks, same(per, int64(1)), nil)); err != nil {
				t.Fatal(err)
			}
			delivered += per
		}
		emitted := 0
		for _, r := range c.Runs {
			emitted += int(r.Count)
		}
		if held := delivered - emitted; held > nseg*per {
			t.Fatalf("round %d: %d rows delivered, %d emitted: %d held back", k, delivered, emitted, held)
		}
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) != nseg*rounds*per {
		t.Fatalf("%d runs, want one per row (the inputs interleave perfectly)", len(c.Runs))
	}
}
