package host

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host/internal/pipeline"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// FuzzDecodePlan feeds arbitrary bytes through DecodePlan, plan validation,
// column resolution and the memory estimate: a plan is refused with an
// error, never a panic.
func FuzzDecodePlan(f *testing.F) {
	cfg := smallGen(1)
	cfg.Segments, cfg.RowsPerSegment, cfg.L0Deletes = 2, 10, 5
	col := generate(f, objstoretest.Local(f), cfg)
	for _, p := range []proto.Message{col.MixPlan, col.L0Plan} {
		b, err := proto.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		j, err := protojson.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	f.Add([]byte(`{"planID":"1","type":"MixCompaction","segmentBinlogs":[{}],"schema":{"fields":[{"isPrimaryKey":true,"dataType":"VarChar"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := DecodePlan(data)
		if err != nil {
			return
		}
		p, err := pipeline.Validate(plan)
		if err != nil {
			if !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("validation error %v does not wrap ErrInvalidPlan", err)
			}
			return
		}
		if _, err := pipeline.ResolveColumns(p.GetSchema(), p.PK, []string{"pk", "ts", "size", "$meta", "101"}); err != nil {
			return
		}
		_, _ = mempool.Estimate(plan, mempool.EstimateOptions{})
	})
}
