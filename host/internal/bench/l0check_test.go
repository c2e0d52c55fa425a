package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
)

// l0Task is an L0 task with one L0 segment of deletes and targets target
// segments.
func l0Task(targets int, deletes uint64) *abi.Task {
	t := &abi.Task{Segments: []abi.Segment{{ID: 1, Level: "L0", Role: abi.RoleL0, Deletes: deletes}}}
	for i := range targets {
		t.Segments = append(t.Segments, abi.Segment{ID: int64(100 + i), Level: "L1", Role: abi.RoleTarget, Rows: 2000})
	}
	return t
}

func l0Pairs(targets, n int, deletes uint64) []abi.L0Pair {
	p := make([]abi.L0Pair, n)
	for i := range p {
		p[i] = abi.L0Pair{Delete: uint32(uint64(i) % deletes), Target: uint32(1 + i%targets)}
	}
	return p
}

// TestL0BatchCheckSameVerdict: checking a probe batch with one
// abi.CheckL0Pairs call (the proposed fix for pipeline.l0Run.checkPair,
// which checks pairs one at a time and so recomputes Task.TotalDeletes
// over every segment per pair) accepts and refuses exactly what the
// per-pair calls do.
func TestL0BatchCheckSameVerdict(t *testing.T) {
	task := l0Task(50, 300)
	perPair := func(ps []abi.L0Pair) int {
		for i, p := range ps {
			if abi.CheckL0Pairs(task, []abi.L0Pair{p}) != nil {
				return i
			}
		}
		return -1
	}
	good := l0Pairs(50, 1000, 300)
	if perPair(good) != -1 || abi.CheckL0Pairs(task, good) != nil {
		t.Fatal("valid pairs refused")
	}
	for _, bad := range []abi.L0Pair{{Delete: 300, Target: 1}, {Delete: 0, Target: 0}, {Delete: 0, Target: 51}} {
		ps := append(l0Pairs(50, 10, 300), bad)
		ps = append(ps, l0Pairs(50, 5, 300)...)
		err := abi.CheckL0Pairs(task, ps)
		if i := perPair(ps); i != 10 || err == nil || !strings.Contains(err.Error(), "pair 10 ") {
			t.Fatalf("bad pair %+v: per-pair index %d, batch error %v", bad, i, err)
		}
	}
}

// BenchmarkL0PairCheck checks 4096 probe pairs against tasks of 1 to 1000
// targets, one call per pair (what the pipeline does) and one call per
// batch.
//
//	go test ./host/internal/bench -run '^$' -bench L0PairCheck -benchtime 200x
func BenchmarkL0PairCheck(b *testing.B) {
	for _, targets := range []int{1, 16, 128, 1000} {
		task := l0Task(targets, 20000)
		pairs := l0Pairs(targets, 4096, 20000)
		b.Run(fmt.Sprintf("targets=%d/per-pair", targets), func(b *testing.B) {
			for b.Loop() {
				for _, p := range pairs {
					if err := abi.CheckL0Pairs(task, []abi.L0Pair{p}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(pairs))*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
		b.Run(fmt.Sprintf("targets=%d/per-batch", targets), func(b *testing.B) {
			for b.Loop() {
				if err := abi.CheckL0Pairs(task, pairs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(pairs))*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}
