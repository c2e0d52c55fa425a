package abi

import (
	"strings"
	"testing"
)

func TestDecisionsRoundTrip(t *testing.T) {
	runs := []Run{{0, 0, 10, 0}, {2, 5, 1, 1}, {1, 0xFFFFFFF0, 16, 0}}
	buf := make([]byte, len(runs)*RunSize)
	if n, err := PutRuns(buf, runs); err != nil || n != 48 {
		t.Fatalf("PutRuns = %d, %v", n, err)
	}
	var d Decisions
	if err := d.Add(EmitRuns, buf); err != nil {
		t.Fatal(err)
	}
	pairs := []L0Pair{{1, 2}, {3, 4}}
	pb := make([]byte, 16)
	PutL0Pairs(pb, pairs)
	if err := d.Add(EmitL0, pb); err != nil {
		t.Fatal(err)
	}
	cs := []Counter{{Segment: 1, Deleted: 5, Expired: 6, Other: 7}}
	cb := make([]byte, 16)
	PutCounters(cb, cs)
	if err := d.Add(EmitCounters, cb); err != nil {
		t.Fatal(err)
	}
	if len(d.Runs) != 3 || d.Runs[2] != runs[2] || d.L0[1] != pairs[1] || d.Counters[0] != cs[0] {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecisionsRejectMalformed(t *testing.T) {
	run := func(r Run) []byte { b := make([]byte, RunSize); PutRuns(b, []Run{r}); return b }
	cases := []struct {
		kind EmitKind
		buf  []byte
		want string
	}{
		{EmitRuns, make([]byte, 15), "not a multiple of the 16-byte record"},
		{EmitRuns, run(Run{Segment: 1, FirstRow: 3}), "run 0 (segment 1, row 3) is empty"},
		{EmitRuns, run(Run{FirstRow: 0xFFFFFFFF, Count: 2}), "overflow the 32-bit row space"},
		{EmitL0, make([]byte, 9), "not a multiple of the 8-byte record"},
		{EmitCounters, make([]byte, 20), "not a multiple of the 16-byte record"},
		{7, nil, "unknown decision kind 7"},
	}
	for _, c := range cases {
		var d Decisions
		err := d.Add(c.kind, c.buf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.kind, err, c.want)
		}
		if len(d.Runs)+len(d.L0)+len(d.Counters) != 0 {
			t.Errorf("%s: failed Add kept records", c.kind)
		}
	}
	if _, err := PutRuns(make([]byte, 8), []Run{{}}); err == nil {
		t.Error("PutRuns into a short buffer succeeded")
	}
}

func TestCheckRunsAndPairs(t *testing.T) {
	task := &Task{MaxOutputs: 2, Segments: []Segment{
		{ID: 11, Role: RoleInput, Rows: 100}, {ID: 12, Role: RoleL0, Deletes: 5}, {ID: 13, Role: RoleTarget, Rows: 9},
	}}
	if err := CheckRuns(task, []Run{{0, 90, 10, 1}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r    Run
		want string
	}{
		{Run{0, 95, 10, 0}, "covers rows [95, 105) of segment 0 (id 11) which has 100 rows"},
		{Run{3, 0, 1, 0}, "names segment 3, task has 3"},
		{Run{1, 0, 1, 0}, "role is l0, not input"},
		{Run{0, 0, 1, 2}, "targets output 2, task allows 2 outputs"},
	} {
		if err := CheckRuns(task, []Run{c.r}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
	}
	if err := CheckL0Pairs(task, []L0Pair{{4, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := CheckL0Pairs(task, []L0Pair{{5, 2}}); err == nil || !strings.Contains(err.Error(), "names delete 5, task has 5 deletes") {
		t.Errorf("delete out of range: %v", err)
	}
	if err := CheckL0Pairs(task, []L0Pair{{0, 0}}); err == nil || !strings.Contains(err.Error(), "not a target") {
		t.Errorf("wrong target: %v", err)
	}
}
