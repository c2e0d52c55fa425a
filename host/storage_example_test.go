package host

import (
	"context"
	"fmt"
	"os"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// ExampleOptions_outputStorageVersion compacts a collection whose segments
// are half storage v1, half Milvus 2.6 storage v2 (packed column groups),
// into storage v2 whatever the plan asks: one FieldBinlog per column
// group, its fieldID the group ID and child_fields its fields.
func ExampleOptions_outputStorageVersion() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "compact-example-")
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim = 2, 1000, 16
	cfg.StorageVersion, cfg.MixedVersions = 2, true
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range col.MixPlan.GetSegmentBinlogs() {
		fmt.Printf("input segment %d: storage_version %d\n", s.GetSegmentID(), s.GetStorageVersion())
	}

	h, err := New(ctx, Options{Store: store, MemoryBytes: 1 << 30, OutputStorageVersion: StorageV2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close(ctx)
	res, err := h.Compact(ctx, col.MixPlan, Native(mixstrategy.New()))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.GetSegments() {
		fmt.Printf("output segment %d: %d rows, storage_version %d\n", s.GetSegmentID(), s.GetNumOfRows(), s.GetStorageVersion())
		for _, fb := range s.GetInsertLogs() {
			fmt.Printf("  group %d: fields %v, %d file(s)\n", fb.GetFieldID(), fb.GetChildFields(), len(fb.GetBinlogs()))
		}
	}
	// Output:
	// input segment 450000000000000100: storage_version 2
	// input segment 450000000000000101: storage_version 0
	// output segment 450000000100000000: 1615 rows, storage_version 2
	//   group 0: fields [0 1 100], 1 file(s)
	//   group 1: fields [102 103 104 105 106], 1 file(s)
	//   group 101: fields [101], 1 file(s)
}
