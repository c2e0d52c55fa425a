package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/tso"
)

// dropBatch is rows [first, first+n) of a segment with pk = row index and
// the given timestamp per row.
func dropBatch(first, n int, ts func(row int) uint64) *segread.Batch {
	pk, t := array.NewInt64Builder(memory.DefaultAllocator), array.NewInt64Builder(memory.DefaultAllocator)
	for r := first; r < first+n; r++ {
		pk.Append(int64(r))
		t.Append(int64(ts(r)))
	}
	return &segread.Batch{FirstRow: int64(first), Rows: n, Columns: map[int64]arrow.Array{100: pk.NewArray(), abi.FieldIDTimestamp: t.NewArray()}}
}

// TestDropCheckClassifies: rows no run covers are classified across word
// and batch boundaries, by the strict delete rule and the TTL, and the
// counters are held to them.
func TestDropCheckClassifies(t *testing.T) {
	const rows = 200
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := tso.FromTime(now.Add(-48*time.Hour)), tso.FromTime(now.Add(-time.Hour))
	rowTS := func(r int) uint64 { // rows 150.. are past the 24h TTL
		if r >= 150 {
			return old
		}
		return fresh
	}
	dels := &deltalog.Deletes{}
	for _, d := range []struct {
		pk int64
		ts uint64
	}{{3, fresh + 1}, {64, fresh + 1}, {65, fresh}, {127, fresh + 5}, {160, old + 1}, {199, fresh + 1}} {
		if err := dels.AppendInt64(d.pk, d.ts); err != nil {
			t.Fatal(err)
		}
	}
	p := &Plan{CompactionPlan: &datapb.CompactionPlan{CollectionTtl: int64(24 * time.Hour)}, PK: &schemapb.FieldSchema{FieldID: 100},
		NowMs: now.UnixMilli()}
	task := &abi.Task{Segments: []abi.Segment{{ID: 77, Role: abi.RoleInput, Rows: rows}}}

	// Dropped: 3 and 64 (deleted), 65 (delete at the row's ts: live), 127
	// (deleted), 150..199 (expired; 160 and 199 also deleted).
	covered := make([]uint64, (rows+63)/64)
	isDropped := func(r int) bool { return r == 3 || r == 64 || r == 65 || r == 127 || r >= 150 }
	for r := 0; r < rows; r++ {
		if !isDropped(r) {
			covered[r/64] |= 1 << (r % 64)
		}
	}
	batches := []*segread.Batch{dropBatch(0, 70, rowTS), dropBatch(70, 60, rowTS), dropBatch(130, 70, rowTS)}
	for _, c := range []struct {
		name    string
		counter abi.Counter
		want    string
	}{
		{"honest", abi.Counter{Deleted: 3, Expired: 50, Other: 1}, ""},
		{"both as deleted", abi.Counter{Deleted: 5, Expired: 48, Other: 1}, ""},
		{"live row as deleted", abi.Counter{Deleted: 6, Expired: 48}, "only 5 of the dropped rows have a delete record newer than the row"},
		{"live row as expired", abi.Counter{Deleted: 3, Expired: 51}, "only 50 of the dropped rows are past the collection TTL"},
		{"counted twice", abi.Counter{Deleted: 5, Expired: 49}, "only 53 of the dropped rows are deleted or past the TTL"},
		{"one short", abi.Counter{Deleted: 3, Expired: 50}, "the strategy dropped 54 rows"},
	} {
		d := newDropCheck(p, task, []*deltalog.Deletes{dels})
		if err := d.report(0, c.counter); err != nil {
			t.Fatalf("%s: report: %v", c.name, err)
		}
		// Two steps, as release marks and the end of the task do.
		if err := d.classify(0, batches[:2], covered, 0, 130); err != nil {
			t.Fatal(err)
		}
		if err := d.classify(0, batches[2:], covered, 130, rows); err != nil {
			t.Fatal(err)
		}
		if s := d.segs[0]; s.dropped != 54 || s.deletable != 5 || s.expirable != 50 || s.explained != 53 {
			t.Fatalf("%s: classified %+v, want 54 dropped, 5 deletable, 50 expirable, 53 explained", c.name, s)
		}
		err := d.check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrABIMisuse) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "segment 77 (input 0)")):
			t.Errorf("%s: %v, want ABI misuse naming segment 77 and %q", c.name, err, c.want)
		}
		if d.dels[0] != nil || d.maps[0] != nil {
			t.Errorf("%s: the delete map outlived the segment's last row", c.name)
		}
	}
}
