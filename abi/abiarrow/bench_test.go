package abiarrow_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/abiarrow"
)

// BenchmarkEncodeFromArrow: describe pk and ts Arrow arrays plus row sizes
// and encode an 8192-row batch into a reused destination, as the host does
// per batch.
func BenchmarkEncodeFromArrow(b *testing.B) {
	const rows = 8192
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range rows {
		ib.Append(int64(i) * 7919)
	}
	pk := ib.NewArray()
	defer pk.Release()
	for i := range rows {
		ib.Append(int64(450000000000000000 + i))
	}
	ts := ib.NewArray()
	defer ts.Release()
	sizes := make([]uint32, rows)
	arrs, ids := []arrow.Array{pk, ts}, []int64{100, abi.FieldIDTimestamp}
	cols, _ := abiarrow.Columns(ids, arrs, sizes)
	n, _ := abi.EncodedSize(rows, cols)
	dst := abi.AlignedBytes(n)
	h := abi.BatchHeader{Kind: abi.BatchRows, Rows: rows}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		cols, err := abiarrow.Columns(ids, arrs, sizes)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := abi.EncodeInto(dst, h, cols); err != nil {
			b.Fatal(err)
		}
	}
}
