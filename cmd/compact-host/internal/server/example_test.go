package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/compacthost/compacthost/cmd/compact-host/internal/server"
)

// echo "compacts" a plan into one empty segment.
type echo struct{}

func (echo) Compact(_ context.Context, plan *datapb.CompactionPlan, rep server.Reporter) (*datapb.CompactionPlanResult, error) {
	rep.Progress(server.Progress{RowsRead: 10})
	return &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed}, nil
}

func ExampleServer() {
	s, err := server.New(server.Config{Compactor: echo{}, Workers: 1})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	plan := `{"planID": "7", "type": "MixCompaction", "segmentBinlogs": [{"segmentID": "1"}]}`
	resp, err := http.Post(ts.URL+"/v1/plans", "application/json", strings.NewReader(plan))
	if err != nil {
		panic(err)
	}
	var sub server.SubmitResponse
	json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	fmt.Println(resp.Status)

	for { // poll the task until it is done
		resp, err := http.Get(ts.URL + sub.Href)
		if err != nil {
			panic(err)
		}
		var task server.TaskView
		json.NewDecoder(resp.Body).Decode(&task)
		resp.Body.Close()
		if task.State == server.StateSucceeded || task.State == server.StateFailed {
			var res datapb.CompactionPlanResult
			protojson.Unmarshal(task.Result, &res)
			fmt.Println(task.State, res.GetPlanID(), res.GetState())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Shutdown(context.Background())
	resp, err = http.Get(ts.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(page), "\n") {
		if strings.HasPrefix(line, "compact_host_tasks_finished_total") || strings.HasPrefix(line, "compact_host_rows_read_total ") {
			fmt.Println(line)
		}
	}
	// Output:
	// 202 Accepted
	// succeeded 7 completed
	// compact_host_tasks_finished_total{state="succeeded"} 1
	// compact_host_tasks_finished_total{state="failed"} 0
	// compact_host_rows_read_total 10
}
