package reference

import (
	"context"
	"fmt"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func smallConfig(pk schemapb.DataType, dist gen.DeleteDistribution, sorted bool) gen.Config {
	c := gen.DefaultConfig()
	c.Segments, c.RowsPerSegment, c.ChunkRows, c.Dim = 3, 1200, 500, 8
	c.PKType, c.Deletes, c.Sorted = pk, dist, sorted
	c.L0Deletes = 400
	return c
}

func generate(t *testing.T, cfg gen.Config) (objstore.Store, *gen.Collection) {
	t.Helper()
	store := objstoretest.Local(t)
	col, err := gen.Generate(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store, col
}

// TestMixCountsMatchGenerator: over every pk type, delete distribution and
// sortedness, the reference's counters equal the generator's promise, every
// kept row is accounted for in the outputs, and merge order holds.
func TestMixCountsMatchGenerator(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		for _, dist := range []gen.DeleteDistribution{gen.DeleteUniform, gen.DeleteClustered} {
			for _, sorted := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/sorted=%v", pk, dist, sorted)
				t.Run(name, func(t *testing.T) {
					cfg := smallConfig(pk, dist, sorted)
					store, col := generate(t, cfg)
					res, err := Mix(context.Background(), store, cfg.RootPath, col.MixPlan)
					if err != nil {
						t.Fatal(err)
					}
					want := col.Expected
					got := res.Counts
					if got.Input != want.Rows || got.Deleted != want.Deleted || got.Expired != want.Expired || got.Kept != want.Kept {
						t.Fatalf("counts %+v, generator expects %+v", got, want)
					}
					if res.Sorted != sorted {
						t.Fatalf("Sorted = %v, want %v", res.Sorted, sorted)
					}
					if len(res.Outputs) != 1 || res.Placeholder {
						t.Fatalf("%d outputs (placeholder %v), want 1 under the default max_size", len(res.Outputs), res.Placeholder)
					}
					rows := res.Outputs[0].Rows
					if int64(len(rows)) != want.Kept {
						t.Fatalf("output holds %d rows, want %d", len(rows), want.Kept)
					}
					checkOrder(t, col, rows, sorted)
				})
			}
		}
	}
}

// checkOrder: merge-sorted output is non-decreasing in pk; unsorted output
// keeps plan order of inputs and row order within each input.
func checkOrder(t *testing.T, col *gen.Collection, rows []Row, sorted bool) {
	t.Helper()
	segIndex := map[int64]int{}
	for i, s := range col.MixPlan.SegmentBinlogs {
		segIndex[s.SegmentID] = i
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		if sorted {
			if comparePK(a.PK, b.PK) > 0 {
				t.Fatalf("rows %d and %d out of pk order: %v then %v", i-1, i, a.PK, b.PK)
			}
			continue
		}
		ia, ib := segIndex[a.Segment], segIndex[b.Segment]
		if ia > ib || (ia == ib && a.Offset >= b.Offset) {
			t.Fatalf("rows %d and %d out of input order: segment %d offset %d then segment %d offset %d",
				i-1, i, a.Segment, a.Offset, b.Segment, b.Offset)
		}
	}
}
