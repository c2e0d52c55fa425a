package host

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/tso"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

// rowFate is what the judge strategy knows of a row: its segment, its
// index in the judge's order of arrival, and whether a newer delete of
// its segment or the TTL explains dropping it.
type rowFate struct {
	seg              uint32
	n                int
	deleted, expired bool
}

// verdict is the judge's decision for one row: keep it, or drop it and
// add count to the segment's counters (which may lie).
type verdict struct {
	keep  bool
	count abi.Counter
}

// judge is a native mix strategy that works out each row's fate by
// Milvus's rules and lets decide keep or drop it and say what to report.
type judge struct {
	decide  func(r rowFate) verdict
	extra   []abi.Counter // emitted first in Finish, as given
	task    *sdk.Task
	dels    map[uint32]map[any]int64 // per segment: pk -> newest delete ts
	n       int
	runs    []sdk.Run
	counted []abi.Counter // per segment
}

func (j *judge) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "judge", Version: "1.0.0", Handles: []string{abi.CompactionMix}}
}

func (j *judge) Begin(t *sdk.Task) error {
	j.task, j.dels, j.n, j.counted = t, map[uint32]map[any]int64{}, 0, make([]abi.Counter, len(t.Segments))
	return nil
}

func (j *judge) Deletes(d *sdk.DeleteBatch) error {
	m := j.dels[d.Segment]
	if m == nil {
		m = map[any]int64{}
		j.dels[d.Segment] = m
	}
	pks, ts := d.PKs(), d.Timestamps()
	for i := range d.Rows {
		if k := pkAt(pks, i); ts[i] > m[k] {
			m[k] = ts[i]
		}
	}
	return nil
}

func pkAt(c *abi.Column, i int) any {
	if c.Type == abi.TypeString {
		return c.String(i)
	}
	return c.Int64s()[i]
}

func (j *judge) Batch(b *sdk.Batch, out sdk.Emitter) error {
	pks, ts := b.Field(j.task.PKFieldID), b.Field(abi.FieldIDTimestamp).Int64s()
	ttl := time.Duration(j.task.CollectionTTLNs)
	j.runs = j.runs[:0]
	for i := range b.Rows {
		d, ok := j.dels[b.Segment][pkAt(pks, i)]
		v := j.decide(rowFate{seg: b.Segment, n: j.n, deleted: ok && ts[i] < d, expired: tso.Expired(uint64(ts[i]), j.task.NowMs, ttl)})
		j.n++
		c := &j.counted[b.Segment]
		c.Deleted, c.Expired, c.Other = c.Deleted+v.count.Deleted, c.Expired+v.count.Expired, c.Other+v.count.Other
		if !v.keep {
			continue
		}
		row := uint32(b.FirstRow) + uint32(i)
		if k := len(j.runs); k > 0 && j.runs[k-1].FirstRow+j.runs[k-1].Count == row {
			j.runs[k-1].Count++
		} else {
			j.runs = append(j.runs, sdk.Run{Segment: b.Segment, FirstRow: row, Count: 1})
		}
	}
	if len(j.runs) == 0 {
		return nil
	}
	return out.Runs(j.runs)
}

func (j *judge) Finish(out sdk.Emitter) error {
	cs := append([]abi.Counter(nil), j.extra...)
	for i, c := range j.counted {
		if c != (abi.Counter{}) {
			c.Segment = uint32(i)
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return out.Counters(cs)
}

// honest drops deleted and expired rows and reports them as Milvus would.
func honest(r rowFate) verdict {
	switch {
	case r.deleted:
		return verdict{count: abi.Counter{Deleted: 1}}
	case r.expired:
		return verdict{count: abi.Counter{Expired: 1}}
	}
	return verdict{keep: true}
}

// TestCompactCounterChecks: counters that do not match the rows a strategy
// dropped fail the task as ABI misuse naming the plugin, the segment and
// the numbers, and leave the store as it was; a strategy that counts its
// own drops under other succeeds and shows them.
func TestCompactCounterChecks(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(31))
	firstSeg := col.MixPlan.GetSegmentBinlogs()[0].GetSegmentID()
	h := newTestHost(t, store, 0, nil)
	before := snapshot(t, store)

	liveDropped, bothSeen := false, false
	keepAll := func(rowFate) verdict { return verdict{keep: true} }
	for _, c := range []struct {
		name   string
		decide func(r rowFate) verdict
		extra  []abi.Counter
		want   string
	}{
		{"deleted 0xFFFFFFFF", keepAll, []abi.Counter{{Deleted: 0xFFFFFFFF}},
			"4294967295 deleted + 0 expired + 0 other rows dropped, but the segment has 1500 rows"},
		{"drops everything uncounted", func(rowFate) verdict { return verdict{} }, nil,
			"1500 rows in, 0 kept, 0 reported deleted, 0 expired, 0 other; kept + deleted + expired + other must equal the rows in; the strategy dropped 1500 rows"},
		{"kept row counted as deleted", func(r rowFate) verdict {
			if r.deleted {
				return verdict{keep: true, count: abi.Counter{Deleted: 1}}
			}
			return honest(r)
		}, nil, "kept + deleted + expired + other must equal the rows in"},
		{"live row counted as expired", func(r rowFate) verdict {
			switch {
			case r.expired: // deleted ones too, so every row past the TTL counts
				return verdict{count: abi.Counter{Expired: 1}}
			case !r.deleted && r.seg == 0 && !liveDropped:
				liveDropped = true
				return verdict{count: abi.Counter{Expired: 1}}
			}
			return honest(r)
		}, nil, "of the dropped rows are past the collection TTL (24h0m0s at now_ms "},
		{"live row counted as deleted", func(r rowFate) verdict {
			if !r.deleted && !r.expired && r.seg == 0 && r.n%7 == 0 {
				return verdict{count: abi.Counter{Deleted: 1}}
			}
			return honest(r)
		}, nil, "of the dropped rows have a delete record newer than the row"},
		{"row counted twice", func(r rowFate) verdict {
			// A row both deleted and expired counts as deleted; a live row
			// dropped as expired then passes the per-reason limits but not
			// their union.
			switch {
			case r.seg != 0:
			case r.deleted && r.expired:
				bothSeen = true
			case !r.deleted && !r.expired && !liveDropped:
				liveDropped = true
				return verdict{count: abi.Counter{Expired: 1}}
			}
			return honest(r)
		}, nil, "of the dropped rows are deleted or past the TTL, and a row counts once"},
	} {
		t.Run(c.name, func(t *testing.T) {
			liveDropped = false
			_, err := h.Compact(ctx, col.MixPlan, Native(&judge{decide: c.decide, extra: c.extra}))
			expectCleanFailure(t, h, store, before, err, ErrABIMisuse, "strategy")
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "judge@1.0.0") ||
				!strings.Contains(err.Error(), fmt.Sprintf("segment %d", firstSeg)) {
				t.Fatalf("error %q, want it to name the plugin, segment %d and contain %q", err, firstSeg, c.want)
			}
		})
	}
	if !bothSeen {
		t.Fatal("the collection has no row both deleted and expired in its first segment; the union case tested nothing")
	}

	// Honest counters pass, and rows dropped for the judge's own reason
	// (every 10th live row) show as dropped.
	var pr progressRecorder
	var logs syncBuffer
	h = newTestHost(t, store, 0, func(o *Options) {
		o.Progress = pr.record
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs})
	})
	var other int64
	res, err := h.Compact(ctx, col.MixPlan, Native(&judge{decide: func(r rowFate) verdict {
		if !r.deleted && !r.expired && r.n%10 == 0 {
			other++
			return verdict{count: abi.Counter{Other: 1}}
		}
		return honest(r)
	}}))
	if err != nil {
		t.Fatal(err)
	}
	got, e := pr.final(), col.Expected
	if other == 0 || got.Dropped != other || got.Deleted != e.Deleted || got.Expired != e.Expired || got.RowsWritten != e.Kept-other || rowsOut(res) != e.Kept-other {
		t.Fatalf("final progress %+v, %d rows out; want %d dropped, %d deleted, %d expired, %d kept", got, rowsOut(res), other, e.Deleted, e.Expired, e.Kept-other)
	}
	if want := fmt.Sprintf("deleted=%d expired=%d dropped=%d", e.Deleted, e.Expired, other); !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
}

// rowsOut sums the rows of a result's segments.
func rowsOut(res *datapb.CompactionPlanResult) int64 {
	var n int64
	for _, s := range res.GetSegments() {
		n += s.GetNumOfRows()
	}
	return n
}

// TestCompactCounterChecksWasm: the checks hold for wasm strategies too. A
// module that keeps nothing and counts nothing fails; the SDK's evenpk
// (deleted rows counted as deleted, odd keys as other) passes. The
// generator's keys are all even, so evenpk drops only deleted rows here.
func TestCompactCounterChecksWasm(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(32))
	var pr progressRecorder
	h := newTestHost(t, store, 0, func(o *Options) { o.Progress = pr.record })
	before := snapshot(t, store)

	silent := admit(t, rt, "mix@0.2.0", tmModule(tmOpts{version: "0.2.0", finishBody: wt.I32Const(0)}))
	_, err := h.Compact(ctx, col.MixPlan, WithPlugin(silent))
	expectCleanFailure(t, h, store, before, err, ErrABIMisuse, "strategy")
	if !strings.Contains(err.Error(), "mix@0.2.0 (sha256 ") || !strings.Contains(err.Error(), "the strategy dropped 1500 rows") {
		t.Fatalf("error %q, want it to name the plugin and the rows dropped", err)
	}

	evenpk := admit(t, rt, "evenpk@0.1.0", buildWasm(t, "../abi/sdk/internal/evenpk/wasm"))
	res, err := h.Compact(ctx, col.MixPlan, WithPlugin(evenpk))
	if err != nil {
		t.Fatal(err)
	}
	got, e := pr.final(), col.Expected
	if got.Deleted != e.Deleted || got.Expired != 0 || got.Dropped != 0 || got.RowsWritten != rowsOut(res) || got.RowsWritten != e.Rows-e.Deleted {
		t.Fatalf("final progress %+v, %d rows out; want %d deleted, none expired or dropped, the other %d kept", got, rowsOut(res), e.Deleted, e.Rows-e.Deleted)
	}
}
