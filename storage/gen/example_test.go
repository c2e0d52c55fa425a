package gen_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Generate a small collection in a local directory and look at the plan that compacts it.
func ExampleGenerate() {
	dir, err := os.MkdirTemp("", "gen-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		log.Fatal(err)
	}

	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim = 2, 1000, 16
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		log.Fatal(err)
	}
	e := col.Expected
	fmt.Printf("plan %d: %s over %d segments\n", col.MixPlan.PlanID, col.MixPlan.Type, len(col.MixPlan.SegmentBinlogs))
	fmt.Printf("rows %d: %d deleted, %d expired, %d kept\n", e.Rows, e.Deleted, e.Expired, e.Kept)
	// Output:
	// plan 450000000000000001: MixCompaction over 2 segments
	// rows 2000: 200 deleted, 185 expired, 1615 kept
}
