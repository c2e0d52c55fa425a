//go:build !wasip1

package mixstrategy_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/plugins/internal/pkey"
)

// placed is one surviving row and its output.
type placed struct{ seg, row, out uint32 }

// scenario is a random mix task, encoded, with what the model decides.
type scenario struct {
	task     *abi.Task
	dels     [][]byte
	batches  [][]byte
	want     []placed
	counters map[uint32]C // per segment, non-zero only
	tooMany  bool         // the survivors need more than max_outputs
}

type segData[K pkey.Key] struct {
	pks     []K
	ts      []int64
	sizes   []uint32
	delPKs  []K
	delTS   []int64
	batches [][2]int // row ranges of its batches
}

// genScenario builds a random task from seed. interleave picks the
// arrival order of the rows batches: segment by segment, or random
// interleaving (always random for unsorted inputs).
func genScenario[K pkey.Key](t testing.TB, seed uint64, key func(int) K, pkType abi.Type, interleave bool) scenario {
	r := rand.New(rand.NewPCG(seed, 0x6d6978))
	const now = 1_764_057_600_000
	hybrid := func() int64 { return (now-int64(r.IntN(21)))<<18 | int64(r.IntN(2)) }
	nseg := 1 + r.IntN(5)
	sorted := r.IntN(3) > 0
	keyRange := 1 + r.IntN(400)
	segs := make([]segData[K], nseg)
	meta := make([]abi.Segment, nseg)
	for s := range segs {
		d := &segs[s]
		n := r.IntN(300)
		if r.IntN(8) == 0 {
			n = 0
		}
		for range n {
			d.pks = append(d.pks, key(r.IntN(keyRange)))
			d.ts = append(d.ts, hybrid())
			d.sizes = append(d.sizes, uint32(1+r.IntN(100)))
		}
		if sorted {
			slices.SortStableFunc(d.pks, cmp.Compare)
		}
		for range r.IntN(60) {
			d.delPKs = append(d.delPKs, key(r.IntN(keyRange)))
			d.delTS = append(d.delTS, hybrid())
		}
		for lo := 0; lo < n; {
			hi := min(n, lo+1+r.IntN(64))
			d.batches = append(d.batches, [2]int{lo, hi})
			lo = hi
		}
		meta[s] = abi.Segment{Rows: uint64(n), Deletes: uint64(len(d.delPKs)), Sorted: sorted}
	}
	task := taskOf(pkType, meta, func(t *abi.Task) {
		t.NowMs = now
		if r.IntN(2) == 0 {
			t.CollectionTTLNs = 10 * 1e6
		}
		t.MaxSize = []int64{1, 50, 500, 5000, 1 << 40}[r.IntN(5)]
		t.MaxRows = []int64{0, 0, 7, 100}[r.IntN(4)]
		t.MaxOutputs = 1 << 20
		if r.IntN(6) == 0 {
			t.MaxOutputs = 3
		}
	})
	sc := scenario{task: task, counters: map[uint32]C{}}

	// Deletes: segments in random order, in batches of up to 16.
	var first uint64
	for _, s := range r.Perm(nseg) {
		d := &segs[s]
		for lo := 0; lo < len(d.delPKs); {
			hi := min(len(d.delPKs), lo+1+r.IntN(16))
			sc.dels = append(sc.dels, delBatch(t, uint32(s), first, d.delPKs[lo:hi], d.delTS[lo:hi]))
			first += uint64(hi - lo)
			lo = hi
		}
	}
	// Rows batches in arrival order.
	var order []ref
	if sorted && !interleave {
		for s := range segs {
			for b := range segs[s].batches {
				order = append(order, ref{s, b})
			}
		}
	} else {
		next := make([]int, nseg)
		for left := true; left; {
			left = false
			s := r.IntN(nseg)
			for i := range nseg { // first segment from s on with batches left
				if k := (s + i) % nseg; next[k] < len(segs[k].batches) {
					order = append(order, ref{k, next[k]})
					next[k]++
					left = true
					break
				}
			}
		}
	}
	for _, o := range order {
		d, rg := &segs[o.seg], segs[o.seg].batches[o.b]
		sc.batches = append(sc.batches, rowsBatch(t, uint32(o.seg), uint64(rg[0]), d.pks[rg[0]:rg[1]], d.ts[rg[0]:rg[1]], d.sizes[rg[0]:rg[1]]))
	}
	model(&sc, segs, order2rows(order, segs), sorted && nseg >= 2)
	return sc
}

// ref names batch b of segment seg.
type ref struct{ seg, b int }

func order2rows[K pkey.Key](order []ref, segs []segData[K]) []placed {
	var rows []placed
	for _, o := range order {
		rg := segs[o.seg].batches[o.b]
		for i := rg[0]; i < rg[1]; i++ {
			rows = append(rows, placed{seg: uint32(o.seg), row: uint32(i)})
		}
	}
	return rows
}

// model is the plain reference: filter each row against its own segment's
// deletes (newest ts per pk, strict <), then the TTL; order by arrival or
// by (pk, segment, row); rotate outputs by size and rows.
func model[K pkey.Key](sc *scenario, segs []segData[K], arrival []placed, merge bool) {
	t := sc.task
	var keep []placed
	for _, p := range arrival {
		d := &segs[p.seg]
		pk, ts := d.pks[p.row], uint64(d.ts[p.row])
		var newest uint64
		found := false
		for i, dpk := range d.delPKs {
			if dpk == pk {
				newest, found = max(newest, uint64(d.delTS[i])), true
			}
		}
		c := sc.counters[p.seg]
		c.Segment = p.seg
		switch {
		case found && ts < newest:
			c.Deleted++
		case t.CollectionTTLNs/1e6 > 0 && t.NowMs-int64(ts>>18) >= t.CollectionTTLNs/1e6:
			c.Expired++
		default:
			keep = append(keep, p)
			continue
		}
		sc.counters[p.seg] = c
	}
	if merge {
		slices.SortFunc(keep, func(a, b placed) int {
			return cmp.Or(cmp.Compare(segs[a.seg].pks[a.row], segs[b.seg].pks[b.row]), cmp.Compare(a.seg, b.seg), cmp.Compare(a.row, b.row))
		})
	}
	var out uint32
	var bytes, rows int64
	for i := range keep {
		if rows > 0 && (bytes >= t.MaxSize || t.MaxRows > 0 && rows >= t.MaxRows) {
			out, bytes, rows = out+1, 0, 0
		}
		if out >= t.MaxOutputs {
			sc.tooMany = true
			return
		}
		keep[i].out = out
		bytes += int64(segs[keep[i].seg].sizes[keep[i].row])
		rows++
	}
	sc.want = keep
}

// expand turns runs into rows. Runs may be split where one batch's
// decisions end (see runList.flush), so the check on fragmentation is a
// bound: at most one extra run per batch over the maximal runs.
func expand(runs []abi.Run, batches int) ([]placed, error) {
	if merged := coalesce(runs); len(runs) > len(merged)+batches {
		return nil, fmt.Errorf("%d runs for %d maximal runs and %d batches: runs are split inside a batch", len(runs), len(merged), batches)
	}
	var rows []placed
	for _, r := range runs {
		for k := range r.Count {
			rows = append(rows, placed{r.Segment, r.FirstRow + k, r.Output})
		}
	}
	return rows, nil
}

func checkScenario(t *testing.T, name string, sc scenario, runs []abi.Run, counters []C, err error) {
	t.Helper()
	if sc.tooMany {
		var ae *abi.Error
		if !asABI(err, &ae) || ae.Status != abi.StatusError {
			t.Fatalf("%s: want a max_outputs error, got %v", name, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	got, xerr := expand(runs, len(sc.batches))
	if xerr != nil {
		t.Fatalf("%s: %v", name, xerr)
	}
	if !slices.Equal(got, sc.want) {
		i := 0
		for i < min(len(got), len(sc.want)) && got[i] == sc.want[i] {
			i++
		}
		t.Fatalf("%s: %d rows, model %d; first difference at %d: got %v want %v", name, len(got), len(sc.want), i,
			got[i:min(i+3, len(got))], sc.want[i:min(i+3, len(sc.want))])
	}
	sum := map[uint32]C{}
	for _, c := range counters {
		s := sum[c.Segment]
		s.Segment, s.Deleted, s.Expired = c.Segment, s.Deleted+c.Deleted, s.Expired+c.Expired
		sum[c.Segment] = s
	}
	for s, c := range sc.counters {
		if c.Deleted == 0 && c.Expired == 0 {
			delete(sc.counters, s)
		}
	}
	if fmt.Sprint(sum) != fmt.Sprint(sc.counters) {
		t.Fatalf("%s: counters %v, model %v", name, sum, sc.counters)
	}
}

func intKey(i int) int64 { return int64(i) - 150 }

var strKey = strconv.Itoa

func TestRandomAgainstModel(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		for _, interleave := range []bool{false, true} {
			for _, pk := range []abi.Type{abi.TypeInt64, abi.TypeString} {
				var sc scenario
				if pk == abi.TypeInt64 {
					sc = genScenario(t, seed, intKey, pk, interleave)
				} else {
					sc = genScenario(t, seed, strKey, pk, interleave)
				}
				c, err := run(t, sc.task, sc.dels, sc.batches)
				checkScenario(t, fmt.Sprintf("seed %d %s interleave=%v", seed, pk, interleave), sc, c.Runs, c.Counters, err)
			}
		}
	}
}
