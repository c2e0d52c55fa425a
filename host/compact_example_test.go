package host

import (
	"context"
	"fmt"
	"os"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// ExampleHost_Compact compacts a generated Milvus collection: 3 segments
// of 2,000 rows with 10% deleted and 10% expired rows, merged into one
// output. In production the strategy comes from a plugin registry
// (Options.Plugins, the active "mix"/"l0" plugins) or WithPlugin; here the
// bundled mix strategy is linked natively to keep the example self-contained.
func ExampleHost_Compact() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "compact-example-")
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim = 3, 2000, 16
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A plan arriving as bytes: plan, err := DecodePlan(data)
	plan := col.MixPlan

	var last Progress
	h, err := New(ctx, Options{
		Store:       store,
		MemoryBytes: 1 << 30,
		Progress:    func(p Progress) { last = p }, // called per batch
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close(ctx)
	res, err := h.Compact(ctx, plan, Native(mixstrategy.New()))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.GetSegments() {
		fmt.Printf("segment %d: %d rows, %d insert logs, sorted=%v\n", s.GetSegmentID(), s.GetNumOfRows(), len(s.GetInsertLogs()), s.GetIsSorted())
	}
	fmt.Printf("read %d rows: %d deleted, %d expired, %d written\n", last.RowsRead, last.Deleted, last.Expired, last.RowsWritten)
	// Output:
	// segment 450000000100000000: 4869 rows, 9 insert logs, sorted=false
	// read 6000 rows: 600 deleted, 531 expired, 4869 written
}
