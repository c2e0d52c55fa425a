//go:build !wasip1

package mixstrategy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
)

// R is a run written positionally: segment, first row, count, output.
type R struct{ Segment, FirstRow, Count, Output uint32 }
type C = abi.Counter

func check(t *testing.T, name string, runs []abi.Run, gotCounters []C, wantRuns []R, wantCounters []C) {
	t.Helper()
	var gotRuns []R
	for _, r := range coalesce(runs) {
		gotRuns = append(gotRuns, R(r))
	}
	if !reflect.DeepEqual(gotRuns, wantRuns) && (len(gotRuns) > 0 || len(wantRuns) > 0) {
		t.Errorf("%s: runs\n got %+v\nwant %+v", name, gotRuns, wantRuns)
	}
	if !reflect.DeepEqual(gotCounters, wantCounters) && (len(gotCounters) > 0 || len(wantCounters) > 0) {
		t.Errorf("%s: counters\n got %+v\nwant %+v", name, gotCounters, wantCounters)
	}
}

// Deletes: strict ts (equal ts is an upsert and survives), the newest
// delete of a pk counts, and deletes apply only to their own segment.
func TestDeleteRules(t *testing.T) {
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 5, Deletes: 4}, {Rows: 2, Deletes: 1}}, nil)
	dels := [][]byte{
		delBatch(t, 0, 0, []int64{1, 2, 3, 3}, []int64{101, 100, 99, 150}),
		delBatch(t, 1, 4, []int64{5}, []int64{1000}), // pk 5 of segment 1 only
	}
	batches := [][]byte{
		rowsBatch(t, 0, 0, []int64{1, 2, 3, 4, 5}, []int64{100, 100, 100, 100, 100}, nil),
		rowsBatch(t, 1, 0, []int64{5, 1}, []int64{100, 100}, nil),
	}
	var logs []string
	setLogger(&logs)
	defer setLogger(nil)
	c := mustRun(t, task, dels, batches)
	check(t, "deletes", c.Runs, c.Counters,
		[]R{{0, 1, 1, 0}, {0, 3, 2, 0}, {1, 1, 1, 0}},
		[]C{{Segment: 0, Deleted: 2}, {Segment: 1, Deleted: 1}})
	if want := "mix: plan 7: 7 rows in, 4 kept in arrival order into 1 outputs (3 runs), 3 deleted, 0 expired"; len(logs) != 1 || logs[0] != want {
		t.Errorf("logs %q, want %q", logs, want)
	}
}

// TTL: age == ttl expires, age == ttl-1 ms survives; the delete check runs
// first and counts the row as deleted.
func TestTTLBoundary(t *testing.T) {
	const now = 1_764_057_600_000
	ts := func(ms int64, logical int64) int64 { return ms<<18 | logical }
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 4, Deletes: 1}}, func(t *abi.Task) {
		t.NowMs, t.CollectionTTLNs = now, 10_000*1e6 // 10 s
	})
	dels := [][]byte{delBatch(t, 0, 0, []int64{4}, []int64{ts(now, 0)})}
	batches := [][]byte{rowsBatch(t, 0, 0, []int64{1, 2, 3, 4},
		[]int64{ts(now-10_000, 0), ts(now-9_999, 262143), ts(now-10_001, 5), ts(now-20_000, 0)}, nil)}
	c := mustRun(t, task, dels, batches)
	check(t, "ttl", c.Runs, c.Counters, []R{{0, 1, 1, 0}}, []C{{Segment: 0, Deleted: 1, Expired: 2}})

	// A sub-millisecond TTL rounds to 0 ms and, as in Milvus (which tests ttl > 0 on the
	// nanoseconds), expires every row that is not deleted.
	task.CollectionTTLNs = 999_999
	c = mustRun(t, task, dels, batches)
	check(t, "ttl<1ms", c.Runs, c.Counters, nil, []C{{Segment: 0, Deleted: 1, Expired: 3}})
}

// Size rotation happens before a row is placed, once the output already
// holds max_size bytes (or max_rows rows); outputs may overshoot by a row.
func TestSizeRotation(t *testing.T) {
	sizes := []uint32{10, 10, 5, 1, 30, 1, 1}
	pks := []int64{1, 2, 3, 4, 5, 6, 7}
	ts := same(7, int64(1))
	cases := []struct {
		name             string
		maxSize, maxRows int64
		want             []R
	}{
		// 10+10=20 <25, +5=25 -> full; 1 -> out1, +30=31 full; 1,1 -> out2
		{"size 25", 25, 0, []R{{0, 0, 3, 0}, {0, 3, 2, 1}, {0, 5, 2, 2}}},
		// every output holds one row once it reaches 1 byte
		{"size 1", 1, 0, []R{{0, 0, 1, 0}, {0, 1, 1, 1}, {0, 2, 1, 2}, {0, 3, 1, 3}, {0, 4, 1, 4}, {0, 5, 1, 5}, {0, 6, 1, 6}}},
		{"rows 3", 1 << 30, 3, []R{{0, 0, 3, 0}, {0, 3, 3, 1}, {0, 6, 1, 2}}},
		// 20 bytes after two rows: the size limit (20) closes it first
		{"rows 3 size 20", 20, 3, []R{{0, 0, 2, 0}, {0, 2, 3, 1}, {0, 5, 2, 2}}},
		// 57 bytes after six rows: one byte below the limit keeps the seventh
		{"limit not reached", 58, 7, []R{{0, 0, 7, 0}}},
		{"limit reached", 57, 7, []R{{0, 0, 6, 0}, {0, 6, 1, 1}}},
	}
	for _, tc := range cases {
		task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 7}}, func(t *abi.Task) { t.MaxSize, t.MaxRows = tc.maxSize, tc.maxRows })
		// split across two batches: rotation state carries over
		c := mustRun(t, task, nil, [][]byte{rowsBatch(t, 0, 0, pks[:3], ts[:3], sizes[:3]), rowsBatch(t, 0, 3, pks[3:], ts[3:], sizes[3:])})
		check(t, tc.name, c.Runs, c.Counters, tc.want, nil)
	}
	// Needing an output beyond max_outputs fails with the numbers.
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 7}}, func(t *abi.Task) { t.MaxSize, t.MaxOutputs = 25, 2 })
	_, err := run(t, task, nil, [][]byte{rowsBatch(t, 0, 0, pks, ts, sizes)})
	var ae *abi.Error
	if !asABI(err, &ae) || ae.Status != abi.StatusError ||
		!strings.Contains(ae.Message, "need output 2 but max_outputs is 2 (max_size 25 bytes, max_rows 0)") {
		t.Errorf("max_outputs: %v", err)
	}
}

// Every batch's kept rows are emitted before the next batch arrives, also
// when nothing is deleted: the host holds a batch until a run starts past
// it, so a run kept open across batches would pin a whole segment.
func TestRunsEmittedPerBatch(t *testing.T) {
	ts := same(3, int64(1))
	for _, sorted := range []bool{false, true} {
		task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 9, Sorted: sorted}}, nil)
		batches := [][]byte{
			rowsBatch(t, 0, 0, []int64{1, 2, 3}, ts, nil),
			rowsBatch(t, 0, 3, []int64{4, 5, 6}, ts, nil),
			rowsBatch(t, 0, 6, []int64{7, 8, 9}, ts, nil),
		}
		c := mustRun(t, task, nil, batches)
		want := []abi.Run{{Segment: 0, FirstRow: 0, Count: 3}, {Segment: 0, FirstRow: 3, Count: 3}, {Segment: 0, FirstRow: 6, Count: 3}}
		if !reflect.DeepEqual(c.Runs, want) {
			t.Errorf("sorted=%v: runs %+v, want one per batch %+v", sorted, c.Runs, want)
		}
	}
}

// Unsorted inputs keep arrival order (batches of segments may interleave);
// runs continue across batch boundaries (as rows; see coalesce).
func TestUnsortedArrivalOrder(t *testing.T) {
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 4, Sorted: true}, {Rows: 4}}, func(t *abi.Task) { t.MaxSize = 50 })
	batches := [][]byte{
		rowsBatch(t, 1, 0, []int64{9, 8}, []int64{1, 1}, nil),
		rowsBatch(t, 0, 0, []int64{1, 2}, []int64{1, 1}, nil),
		rowsBatch(t, 0, 2, []int64{3, 4}, []int64{1, 1}, nil),
		rowsBatch(t, 1, 2, []int64{7, 6}, []int64{1, 1}, nil),
	}
	c := mustRun(t, task, nil, batches)
	check(t, "unsorted", c.Runs, c.Counters, []R{{1, 0, 2, 0}, {0, 0, 3, 0}, {0, 3, 1, 1}, {1, 2, 2, 1}}, nil)

	// One sorted segment alone is not merged either (Milvus 2.6 needs >= 2).
	one := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 3, Sorted: true}}, nil)
	c = mustRun(t, one, nil, [][]byte{rowsBatch(t, 0, 0, []int64{1, 2, 3}, []int64{1, 1, 1}, nil)})
	check(t, "single sorted", c.Runs, c.Counters, []R{{0, 0, 3, 0}}, nil)
}

// Everything dropped: no runs, only counters.
func TestEmptyResult(t *testing.T) {
	task := taskOf(abi.TypeInt64, []abi.Segment{{Rows: 2, Deletes: 2, Sorted: true}, {Rows: 0, Sorted: true}}, nil)
	c := mustRun(t, task, [][]byte{delBatch(t, 0, 0, []int64{1, 2}, []int64{5, 5})},
		[][]byte{rowsBatch(t, 0, 0, []int64{1, 2}, []int64{1, 1}, nil)})
	if len(c.Runs) != 0 || !reflect.DeepEqual(c.Counters, []C{{Segment: 0, Deleted: 2}}) {
		t.Fatalf("runs %+v counters %+v", c.Runs, c.Counters)
	}
	// No rows at all.
	c = mustRun(t, taskOf(abi.TypeString, []abi.Segment{{Rows: 0}}, nil), nil, nil)
	if len(c.Runs) != 0 || len(c.Counters) != 0 {
		t.Fatalf("runs %+v counters %+v", c.Runs, c.Counters)
	}
}
