//go:build !wasip1

package mixstrategy_test

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// ExampleNew runs the mix strategy natively on two sorted input segments:
// segment 0 deletes its pk 3 (delete ts 9 > row ts 5), segment 1's own
// pk 3 survives because deletes apply only to their segment; the rows are
// merged by pk and split after 20 bytes.
func ExampleNew() {
	task := []byte(`{"abi":1,"plan_id":1,"type":"mix","pk_field_id":100,"pk_type":"int64",
		"segments":[{"id":11,"role":"input","rows":3,"deletes":1,"sorted":true},
		            {"id":12,"role":"input","rows":2,"sorted":true}],
		"columns":[{"field_id":100,"name":"pk","type":"int64"},{"field_id":1,"name":"ts","type":"int64"},
		           {"field_id":-1,"name":"size","type":"uint32"}],
		"max_size":20,"max_outputs":4,"memory_grant":67108864,"batch_rows":8192}`)
	rows := func(seg uint32, pks []int64) []byte {
		ts, sizes := make([]int64, len(pks)), make([]uint32, len(pks))
		for i := range pks {
			ts[i], sizes[i] = 5, 10
		}
		b, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Segment: seg, Rows: len(pks)},
			[]abi.ColumnData{abi.Int64Data(100, pks), abi.Int64Data(abi.FieldIDTimestamp, ts), abi.RowSizeData(sizes)})
		return b
	}
	dels, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Segment: 0, Rows: 1},
		[]abi.ColumnData{abi.Int64Data(100, []int64{3}), abi.Int64Data(abi.FieldIDTimestamp, []int64{9})})

	got, err := sdk.RunTask(mixstrategy.New(), task, [][]byte{dels}, [][]byte{rows(1, []int64{2, 3}), rows(0, []int64{1, 3, 4})})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range got.Runs {
		fmt.Printf("segment %d rows %d..%d -> output %d\n", r.Segment, r.FirstRow, r.FirstRow+r.Count-1, r.Output)
	}
	fmt.Printf("counters %+v\n", got.Counters)
	// Output:
	// segment 0 rows 0..0 -> output 0
	// segment 1 rows 0..0 -> output 0
	// segment 1 rows 1..1 -> output 1
	// segment 0 rows 2..2 -> output 1
	// counters [{Segment:0 Deleted:1 Expired:0 Other:0}]
}
