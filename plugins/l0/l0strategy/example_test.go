//go:build !wasip1

package l0strategy_test

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
)

// ExampleNew routes three deletes of one L0 segment to two targets: target
// 1 holds pks 1..10, target 2's range is unknown; the host's bloom filter
// (here: even pks only) rules out the rest.
func ExampleNew() {
	task := []byte(`{"abi":1,"plan_id":3,"type":"l0","pk_field_id":100,"pk_type":"int64",
		"segments":[{"id":50,"level":"L0","role":"l0","rows":0,"deletes":3},
		            {"id":60,"level":"L1","role":"target","rows":1000,"deletes":0,"pk_min":"1","pk_max":"10"},
		            {"id":61,"level":"L1","role":"target","rows":1000,"deletes":0}],
		"columns":[],"memory_grant":67108864,"batch_rows":8192}`)
	pks := []int64{4, 20, 7}
	dels, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Segment: 0, Rows: 3},
		[]abi.ColumnData{abi.Int64Data(100, pks), abi.Int64Data(abi.FieldIDTimestamp, []int64{100, 101, 102})})

	c := new(sdk.Collector)
	c.ProbeFunc = func(pairs []abi.L0Pair, hits []byte) error {
		for i, p := range pairs {
			if pks[p.Delete]%2 == 0 {
				hits[i/8] |= 1 << (i % 8)
			}
		}
		return nil
	}
	d, _ := sdk.NewDriver(l0strategy.New(), c)
	if err := d.Begin(task); err != nil {
		fmt.Println(err)
		return
	}
	if err := d.Deletes(dels); err != nil {
		fmt.Println(err)
		return
	}
	if err := d.Finish(); err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range c.L0 {
		fmt.Printf("delete %d (pk %d) -> segment %d\n", p.Delete, pks[p.Delete], p.Target)
	}
	// Output:
	// delete 0 (pk 4) -> segment 1
	// delete 0 (pk 4) -> segment 2
	// delete 1 (pk 20) -> segment 2
}
