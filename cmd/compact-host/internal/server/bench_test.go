package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
)

// instant finishes every plan at once.
type instant struct{ done atomic.Int64 }

func (c *instant) Compact(_ context.Context, plan *datapb.CompactionPlan, rep Reporter) (*datapb.CompactionPlanResult, error) {
	rep.Progress(Progress{RowsRead: 1})
	c.done.Add(1)
	return &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed}, nil
}

// BenchmarkSubmit measures the server's cost per plan: one POST over
// loopback HTTP, decode, queue, run on a worker, record the result.
func BenchmarkSubmit(b *testing.B) {
	c := &instant{}
	s, err := New(Config{Compactor: c, Queue: 1 << 16, History: 1000})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body, err := protojson.Marshal(testPlan(int64(i + 1)))
		if err != nil {
			b.Fatal(err)
		}
		resp, err := http.Post(ts.URL+"/v1/plans", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	s.Shutdown(context.Background())
}

// BenchmarkMetrics measures rendering /metrics.
func BenchmarkMetrics(b *testing.B) {
	s, err := New(Config{Compactor: &instant{}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		s.WriteMetrics(io.Discard)
	}
}
