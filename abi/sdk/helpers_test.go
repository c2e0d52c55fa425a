package sdk_test

import (
	"encoding/json"
	"testing"

	"github.com/compacthost/compacthost/abi"
)

// fixture is one mix task for the evenpk strategy: two input segments of
// 6 and 4 rows (pks 0..9), one delete of pk 2 newer than its row, one
// delete of pk 4 older than its row, and max_size forcing a split.
type fixture struct {
	task    []byte
	deletes [][]byte
	batches [][]byte
}

func taskJSON(t testing.TB, planID int64, typ string, mutate func(*abi.Task)) []byte {
	task := &abi.Task{ABI: 1, PlanID: planID, Type: typ, PKFieldID: 100, PKType: abi.TypeInt64,
		Segments: []abi.Segment{{ID: 11, Role: abi.RoleInput, Rows: 6, Deletes: 2}, {ID: 12, Role: abi.RoleInput, Rows: 4}},
		Columns: []abi.ColumnInfo{{FieldID: 100, Name: "pk", Type: abi.TypeInt64}, {FieldID: 1, Name: "ts", Type: abi.TypeInt64},
			{FieldID: -1, Name: "size", Type: abi.TypeUint32}},
		MaxSize: 25, MaxOutputs: 4, MemoryGrant: 64 << 20, BatchRows: 4, MaxBatchBytes: 1 << 16}
	if mutate != nil {
		mutate(task)
	}
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rowsBatch(t testing.TB, seg uint32, first uint64, pks []int64) []byte {
	ts := make([]int64, len(pks))
	sizes := make([]uint32, len(pks))
	for i := range pks {
		ts[i], sizes[i] = 100, 10
	}
	b, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Segment: seg, FirstRow: first, Rows: len(pks)},
		[]abi.ColumnData{abi.Int64Data(100, pks), abi.Int64Data(abi.FieldIDTimestamp, ts), abi.RowSizeData(sizes)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFixture(t testing.TB, planID int64) fixture {
	dels, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Segment: 0, Rows: 2},
		[]abi.ColumnData{abi.Int64Data(100, []int64{2, 4}), abi.Int64Data(abi.FieldIDTimestamp, []int64{200, 50})})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{
		task:    taskJSON(t, planID, abi.CompactionMix, nil),
		deletes: [][]byte{dels},
		batches: [][]byte{rowsBatch(t, 0, 0, []int64{0, 1, 2, 3}), rowsBatch(t, 0, 4, []int64{4, 5}), rowsBatch(t, 1, 0, []int64{6, 7, 8, 9})},
	}
}

// wantRuns is what evenpk decides for newFixture: kept pks 0, 4, 6, 8 (2 is
// deleted), 10 bytes each, at most 25 bytes per output.
var wantRuns = []abi.Run{
	{Segment: 0, FirstRow: 0, Count: 1, Output: 0},
	{Segment: 0, FirstRow: 4, Count: 1, Output: 0},
	{Segment: 1, FirstRow: 0, Count: 1, Output: 1},
	{Segment: 1, FirstRow: 2, Count: 1, Output: 1},
}

// wantCounters: pk 2 deleted, the odd pks dropped for evenpk's own reason.
var wantCounters = []abi.Counter{{Segment: 0, Deleted: 1, Other: 2}, {Segment: 0, Other: 1}, {Segment: 1, Other: 2}}
