package statslog_test

import (
	"fmt"

	"github.com/compacthost/compacthost/storage/statslog"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Build a segment's pk stats, serialize them as Milvus does, read them back and
// apply the L0 hit rule to a few deletes.
func Example() {
	b, err := statslog.NewBuilder(100, schemapb.DataType_Int64, 3)
	if err != nil {
		panic(err)
	}
	for _, pk := range []int64{10, 20, 30} {
		b.AddInt64(pk)
	}
	s, _ := b.Finish()
	data, _ := statslog.Encode(s)

	list, err := statslog.Decode("files/stats_log/1/2/3/100/444", data)
	if err != nil {
		panic(err)
	}
	got := list[0]
	fmt.Println(got.FieldID, got.PKType, got.Min.Int, got.Max.Int, got.Filter.Type())
	for _, pk := range []int64{20, 5, 31} {
		fmt.Println(pk, got.MayContainInt64(pk))
	}
	// Output:
	// 100 Int64 10 30 BlockedBloomFilter
	// 20 true
	// 5 false
	// 31 false
}
