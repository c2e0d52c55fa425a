package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
)

// rangedPlanJSON is testPlan(id) with output segment IDs [seg, seg+100)
// and log IDs [log, log+100).
func rangedPlanJSON(t *testing.T, id, seg, log int64) []byte {
	p := testPlan(id)
	p.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: seg, End: seg + 100}
	p.PreAllocatedLogIDs = &datapb.IDRange{Begin: log, End: log + 100}
	b, err := protojson.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSubmitOverlappingRanges: a plan whose output ranges overlap a
// running or a queued plan's is refused with 409 naming that plan; the
// ranges are free again once the task finishes.
func TestSubmitOverlappingRanges(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, Queue: 4})
	post := func(body []byte) (int, string) {
		resp, b := h.do("POST", "/v1/plans", "application/json", body)
		var e errorBody
		if resp.StatusCode != http.StatusAccepted {
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("error body %s: %v", b, err)
			}
		}
		return resp.StatusCode, e.Error
	}
	expect409 := func(body []byte, want string) {
		t.Helper()
		code, msg := post(body)
		if code != http.StatusConflict || !strings.Contains(msg, want) || !strings.Contains(msg, "resubmit when that plan's task has finished") {
			t.Fatalf("POST = %d %q, want 409 containing %q", code, msg, want)
		}
	}

	if code, msg := post(rangedPlanJSON(t, 1, 100, 1000)); code != http.StatusAccepted {
		t.Fatalf("plan 1: %d %s", code, msg)
	}
	<-h.fake.started // plan 1 runs
	second := rangedPlanJSON(t, 2, 300, 1050)
	expect409(second, "plan 2: pre_allocated_logIDs [1050, 1150) overlaps plan 1's [1000, 1100)")
	if code, msg := post(rangedPlanJSON(t, 3, 400, 5000)); code != http.StatusAccepted {
		t.Fatalf("plan 3 (disjoint): %d %s", code, msg)
	}
	// Plan 3 is queued behind plan 1: its ranges are held too.
	expect409(rangedPlanJSON(t, 4, 450, 9000), "plan 4: pre_allocated_segmentIDs [450, 550) overlaps plan 3's [400, 500)")

	h.fake.release <- errors.New("plan 1 failed")
	if got := <-h.fake.started; got != 3 {
		t.Fatalf("started plan %d, want 3", got)
	}
	if code, msg := post(second); code != http.StatusAccepted {
		t.Fatalf("plan 2 after plan 1 failed: %d %s", code, msg)
	}
	h.fake.release <- nil
	if got := <-h.fake.started; got != 2 {
		t.Fatalf("started plan %d, want 2", got)
	}
	h.fake.release <- nil
	if code, msg := post(rangedPlanJSON(t, 4, 450, 9000)); code != http.StatusAccepted {
		t.Fatalf("plan 4 after plan 3 succeeded: %d %s", code, msg)
	}
	<-h.fake.started
	h.fake.release <- nil

	if got := h.srv.snapshot().c.rejected["ranges_in_use"]; got != 2 {
		t.Fatalf("ranges_in_use rejections = %d, want 2", got)
	}
}
