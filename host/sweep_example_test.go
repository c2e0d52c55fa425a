package host

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
)

// ExampleFindOrphans sweeps after a task that died before its result was
// committed: one output it had written lies under the plan's pre-allocated
// IDs and no result lists it. FindOrphans lists it; Sweep deletes it.
// Inputs and objects a given result lists are never touched.
func ExampleFindOrphans() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sweep-example-")
	defer os.RemoveAll(dir)
	store, _ := objstore.NewLocal(dir)
	cfg := gen.DefaultConfig()
	cfg.Segments, cfg.RowsPerSegment, cfg.Dim = 2, 100, 4
	col, err := gen.Generate(ctx, store, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	plan := col.MixPlan
	in := plan.GetSegmentBinlogs()[0]
	out := milvuspath.InsertLog(DefaultRootPath, in.GetCollectionID(), in.GetPartitionID(),
		plan.GetPreAllocatedSegmentIDs().GetBegin(), 100, plan.GetPreAllocatedLogIDs().GetBegin())
	store.Put(ctx, out, strings.NewReader("half a binlog"), 13)

	var results []*datapb.CompactionPlanResult // the committed results of the plan, if any
	orphans, err := FindOrphans(ctx, store, plan, SweepOptions{Results: results})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range orphans {
		fmt.Println(o.Key, o.Size)
	}
	deleted, err := Sweep(ctx, store, plan, SweepOptions{Results: results})
	fmt.Println("deleted", len(deleted), err)
	// Output:
	// files/insert_log/449000000000000001/449000000000000002/450000000100000000/100/450000000200000000 13
	// deleted 1 <nil>
}
