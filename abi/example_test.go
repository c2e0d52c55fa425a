package abi_test

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
)

// Example shows both directions of one crossing: the host encodes a rows
// batch, the guest decodes zero-copy views and answers with runs, the host
// decodes the runs.
func Example() {
	// Host: pk, ts and row-size columns of rows 100..103 of input segment 1.
	h := abi.BatchHeader{Kind: abi.BatchRows, Segment: 1, FirstRow: 100, Rows: 4}
	buf, err := abi.Encode(h, []abi.ColumnData{
		abi.Int64Data(100, []int64{10, 11, 12, 13}),
		abi.Int64Data(abi.FieldIDTimestamp, []int64{1, 1, 1, 1}),
		abi.RowSizeData([]uint32{40, 40, 40, 40}),
	})
	if err != nil {
		panic(err)
	}

	// Guest: keep even primary keys.
	batch, err := abi.DecodeBatch(buf)
	if err != nil {
		panic(err)
	}
	var runs []abi.Run
	for i, pk := range batch.Field(100).Int64s() {
		if pk%2 == 0 {
			runs = append(runs, abi.Run{Segment: batch.Segment, FirstRow: uint32(batch.FirstRow) + uint32(i), Count: 1})
		}
	}
	out := make([]byte, len(runs)*abi.RunSize)
	abi.PutRuns(out, runs)

	// Host: decode what emit(EmitRuns, out) carried.
	var d abi.Decisions
	if err := d.Add(abi.EmitRuns, out); err != nil {
		panic(err)
	}
	fmt.Println(len(buf), d.Runs)
	// Output: 208 [{1 100 1 0} {1 102 1 0}]
}
