package deltalog_test

import (
	"bytes"
	"fmt"

	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Write a deltalog the way current Milvus does, read it back and apply the
// delete rule to rows of the segment.
func Example() {
	d := &deltalog.Deletes{}
	_ = d.AppendInt64(42, 2000)
	_ = d.AppendInt64(7, 1500)
	_ = d.AppendInt64(42, 1800) // an older delete of the same pk

	var obj bytes.Buffer
	w, err := deltalog.Write(&obj, deltalog.Meta{CollectionID: 1, PartitionID: 2, SegmentID: 3}, d, deltalog.FormatJSON)
	if err != nil {
		panic(err)
	}
	fmt.Println("rows", w.Rows, "ts", w.MinTS, w.MaxTS, "memory", w.MemorySize)

	got, format, err := deltalog.Read("files/delta_log/1/2/3/444", bytes.NewReader(obj.Bytes()), int64(obj.Len()))
	if err != nil {
		panic(err)
	}
	m, _ := deltalog.BuildMap(schemapb.DataType_Int64, got)
	fmt.Println(format, m.Len(), "distinct pks")
	fmt.Println(m.DeletedInt64(42, 1999), m.DeletedInt64(42, 2000), m.DeletedInt64(8, 1))
	// Output:
	// rows 3 ts 1500 2000 memory 72
	// json 2 distinct pks
	// true false false
}
