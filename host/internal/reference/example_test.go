package reference_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/compacthost/compacthost/host/internal/reference"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
)

// Compute the expected outcome of a generated collection's mix and L0
// plans. A differential test would run the pipeline on the same plan, read
// its result back with ReadMix / ReadL0 and print DiffMix / DiffL0.
func ExampleMix() {
	dir, err := os.MkdirTemp("", "reference-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := objstore.NewLocal(dir)
	if err != nil {
		log.Fatal(err)
	}
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim, cfg.Sorted = 2, 1000, 16, true
	cfg.MaxSegmentSize = 64 << 10
	ctx := context.Background()
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		log.Fatal(err)
	}

	mix, err := reference.Mix(ctx, store, cfg.RootPath, col.MixPlan)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("mix: %+v\n", mix.Counts)
	fmt.Printf("merge-sorted %v into %d outputs; first row pk %v\n", mix.Sorted, len(mix.Outputs), mix.Outputs[0].Rows[0].PK)
	fmt.Printf("diff with itself: %q\n", reference.DiffMix(mix, mix))

	l0, err := reference.L0(ctx, store, cfg.RootPath, col.L0Plan)
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range l0.Order {
		fmt.Printf("L0 target %d: %d deletes (%d true hits)\n", id, len(l0.Targets[id]), col.Expected.L0Hits[id])
	}
	// Output:
	// mix: {Input:2000 Deleted:200 Expired:184 Kept:1616}
	// merge-sorted true into 5 outputs; first row pk 1000002
	// diff with itself: ""
	// L0 target 450000000000000100: 473 deletes (473 true hits)
	// L0 target 450000000000000101: 513 deletes (513 true hits)
}
