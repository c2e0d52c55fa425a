package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
)

// fakeCompactor announces each call on started, reports fixed progress, and
// finishes when the test sends the outcome on release (nil: success) or
// when ctx ends.
type fakeCompactor struct {
	started chan int64
	release chan error
}

func newFake() *fakeCompactor {
	return &fakeCompactor{started: make(chan int64, 100), release: make(chan error)}
}

func (f *fakeCompactor) Compact(ctx context.Context, plan *datapb.CompactionPlan, rep Reporter) (*datapb.CompactionPlanResult, error) {
	f.started <- plan.GetPlanID()
	rep.Plugin(host.PluginID{Name: "mix", Version: "1.0.0", SHA256: "ab12"})
	rep.Progress(Progress{RowsRead: 100, BytesRead: 4000})
	rep.Progress(Progress{DeletesRead: 30, RowsRead: 250, BytesRead: 10000, RowsWritten: 200, BytesWritten: 8000})
	select {
	case err := <-f.release:
		if err != nil {
			return nil, err
		}
		if plan.GetPlanID() == 666 {
			panic("plan of the beast")
		}
		return &datapb.CompactionPlanResult{
			PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed, Type: plan.GetType(),
			Segments: []*datapb.CompactionSegment{{SegmentID: 9001, NumOfRows: 200}},
		}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("plan %d: %w", plan.GetPlanID(), ctx.Err())
	}
}

func testPlan(id int64) *datapb.CompactionPlan {
	return &datapb.CompactionPlan{
		PlanID: id, Type: datapb.CompactionType_MixCompaction, Channel: "ch-1",
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{{SegmentID: 1}},
	}
}

func planJSON(t *testing.T, id int64) []byte {
	b, err := protojson.Marshal(testPlan(id))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	t    *testing.T
	srv  *Server
	fake *fakeCompactor
	http *httptest.Server
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	fake := newFake()
	if cfg.Compactor == nil {
		cfg.Compactor = fake
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: s, fake: fake, http: httptest.NewServer(s.Handler())}
	t.Cleanup(func() {
		h.http.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // cancel whatever still runs at once
		s.Shutdown(ctx)
	})
	return h
}

func (h *harness) do(method, path, contentType string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	hdr := http.Header{}
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	return h.doHeader(method, path, hdr, body)
}

// doHeader sends a request with the given headers and reads the answer.
func (h *harness) doHeader(method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header = hdr
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

// submit posts a plan and returns its task ID, failing unless 202.
func (h *harness) submit(id int64) string {
	h.t.Helper()
	resp, body := h.do("POST", "/v1/plans", "application/json", planJSON(h.t, id))
	if resp.StatusCode != http.StatusAccepted {
		h.t.Fatalf("submit plan %d: %d %s", id, resp.StatusCode, body)
	}
	var sr SubmitResponse
	if err := json.Unmarshal(body, &sr); err != nil || sr.TaskID == "" || sr.PlanID != id || sr.State != StateQueued {
		h.t.Fatalf("submit plan %d: %v %s", id, err, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/tasks/"+sr.TaskID || sr.Href != loc {
		h.t.Fatalf("Location %q, href %q for task %s", loc, sr.Href, sr.TaskID)
	}
	return sr.TaskID
}

func (h *harness) task(id string) TaskView {
	h.t.Helper()
	resp, body := h.do("GET", "/v1/tasks/"+id, "", nil)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET task %s: %d %s", id, resp.StatusCode, body)
	}
	var v TaskView
	if err := json.Unmarshal(body, &v); err != nil {
		h.t.Fatalf("task %s: %v\n%s", id, err, body)
	}
	return v
}

// waitState polls a task until it reaches state (the fake's outcome is
// already decided, so this ends quickly).
func (h *harness) waitState(id string, state State) TaskView {
	h.t.Helper()
	for i := 0; ; i++ {
		v := h.task(id)
		if v.State == state {
			return v
		}
		if i == 2000 {
			h.t.Fatalf("task %s stuck in %s, want %s", id, v.State, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSubmitRunSucceed(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	id := h.submit(42)
	if got := <-h.fake.started; got != 42 {
		t.Fatalf("compactor got plan %d", got)
	}
	if v := h.task(id); v.State != StateRunning || v.StartedAt == nil || v.Result != nil {
		t.Fatalf("while running: %+v", v)
	}
	h.fake.release <- nil
	v := h.waitState(id, StateSucceeded)
	if v.PlanID != 42 || v.Type != "MixCompaction" || v.Channel != "ch-1" || v.Segments != 1 || v.FinishedAt == nil || v.Error != "" ||
		v.Plugin == nil || *v.Plugin != (PluginRef{Name: "mix", Version: "1.0.0", SHA256: "ab12"}) {
		t.Fatalf("task %+v", v)
	}
	if v.Progress != (Progress{DeletesRead: 30, RowsRead: 250, BytesRead: 10000, RowsWritten: 200, BytesWritten: 8000}) {
		t.Fatalf("progress %+v", v.Progress)
	}
	var res datapb.CompactionPlanResult
	if err := protojson.Unmarshal(v.Result, &res); err != nil {
		t.Fatalf("result is not protojson: %v\n%s", err, v.Result)
	}
	if res.GetPlanID() != 42 || res.GetSegments()[0].GetSegmentID() != 9001 || res.GetState() != datapb.CompactionTaskState_completed {
		t.Fatalf("result %v", &res)
	}
}

func TestBinaryProtobufPlan(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	b, _ := proto.Marshal(testPlan(7))
	resp, body := h.do("POST", "/v1/plans", ContentTypeProtobuf, b)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("binary plan: %d %s", resp.StatusCode, body)
	}
	if got := <-h.fake.started; got != 7 {
		t.Fatalf("compactor got plan %d", got)
	}
	h.fake.release <- nil
}

func TestBadPlan400(t *testing.T) {
	h := newHarness(t, Config{})
	noSegs, _ := protojson.Marshal(&datapb.CompactionPlan{PlanID: 5})
	cases := []struct {
		ctype string
		body  []byte
		want  string
	}{
		{"application/json", nil, "empty request body"},
		{"application/json", []byte(`{"planID": "x"}`), "not a protojson CompactionPlan"},
		{"application/json", []byte(`{"nonsense": 1}`), "plan has no planID"},
		{"application/json", []byte(`{"planID": 1, "segmentBinlogs": {}}`), "not a protojson CompactionPlan"},
		{"", []byte(`not json`), "not a protojson CompactionPlan"},
		{ContentTypeProtobuf, []byte{0xff, 0xff, 0xff}, "not a binary protobuf CompactionPlan"},
		{"application/json", []byte(`{"segmentBinlogs": [{"segmentID": "1"}]}`), "plan has no planID"},
		{"application/json", noSegs, "plan 5 has no segmentBinlogs"},
	}
	for _, c := range cases {
		resp, body := h.do("POST", "/v1/plans", c.ctype, c.body)
		var e errorBody
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Error, "bad plan: ") || !strings.Contains(e.Error, c.want) {
			t.Errorf("%q: %d %s; want 400 with %q", c.body, resp.StatusCode, body, c.want)
		}
	}
	if got := h.srv.list("", 0); len(got) != 0 {
		t.Fatalf("bad plans created tasks: %+v", got)
	}
}

func TestDuplicatePlan409(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	first := h.submit(8)
	<-h.fake.started
	resp, body := h.do("POST", "/v1/plans", "application/json", planJSON(t, 8))
	var e errorBody
	want := "duplicate plan: plan 8 is already running as task " + first
	if resp.StatusCode != http.StatusConflict || json.Unmarshal(body, &e) != nil || e.Error != want {
		t.Fatalf("duplicate: %d %s; want 409 %q", resp.StatusCode, body, want)
	}
	h.fake.release <- nil
	h.waitState(first, StateSucceeded)
	h.submit(8) // finished plans may be resubmitted
	<-h.fake.started
	h.fake.release <- nil
}

func TestUnknownTask404(t *testing.T) {
	h := newHarness(t, Config{})
	resp, body := h.do("GET", "/v1/tasks/0123456789abcdef", "", nil)
	var e errorBody
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, `no task "0123456789abcdef"`) {
		t.Fatalf("unknown task: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
}

func TestQueueFull429(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, Queue: 1, RetryAfter: 3 * time.Second})
	running := h.submit(1)
	<-h.fake.started // plan 1 holds the only worker
	queued := h.submit(2)
	resp, body := h.do("POST", "/v1/plans", "application/json", planJSON(t, 3))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third plan: %d %s", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "3" {
		t.Fatalf("Retry-After %q", ra)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	want := "plan 3 refused: queue full: 1 plans waiting and 1 running; retry after 3s"
	if e.Error != want || *e.QueueLength != 1 || *e.QueueCapacity != 1 || *e.RetryAfter != 3 {
		t.Fatalf("429 body %s; want error %q", body, want)
	}
	if v := h.task(queued); v.State != StateQueued || v.StartedAt != nil {
		t.Fatalf("second plan %+v", v)
	}
	h.fake.release <- nil
	h.waitState(running, StateSucceeded)
	<-h.fake.started
	h.fake.release <- nil
	h.waitState(queued, StateSucceeded)
	h.submit(3) // room again
	<-h.fake.started
	h.fake.release <- nil
}

func TestFailureCauseAndPanic(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	id := h.submit(10)
	<-h.fake.started
	h.fake.release <- &host.TaskError{Plugin: host.PluginID{Name: "mix", Version: "1.0.0"}, Op: "compact_v1_batch", Kind: host.ErrTrap, Message: "unreachable"}
	v := h.waitState(id, StateFailed)
	if v.Cause != "trap" || v.Error != "plugin mix@1.0.0: compact_v1_batch: wasm trap: unreachable" || v.Result != nil {
		t.Fatalf("failed task %+v", v)
	}
	id = h.submit(666)
	<-h.fake.started
	h.fake.release <- nil
	v = h.waitState(id, StateFailed)
	if v.Cause != "internal" || v.Error != "compactor panicked: plan 666: plan of the beast" {
		t.Fatalf("panicking compactor: %+v", v)
	}
}

func TestTaskTimeout(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, TaskTimeout: time.Millisecond})
	id := h.submit(11)
	<-h.fake.started
	v := h.waitState(id, StateFailed)
	if v.Cause != "timeout" || v.Error != "plan 11: context deadline exceeded" {
		t.Fatalf("timed out task %+v", v)
	}
}

func TestHistoryBoundAndList(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, History: 2})
	var ids []string
	for i := int64(1); i <= 3; i++ {
		ids = append(ids, h.submit(i))
		<-h.fake.started
		h.fake.release <- nil
		h.waitState(ids[i-1], StateSucceeded)
	}
	if resp, _ := h.do("GET", "/v1/tasks/"+ids[0], "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("oldest finished task still served: %d", resp.StatusCode)
	}
	resp, body := h.do("GET", "/v1/tasks", "", nil)
	var l TaskList
	if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil || len(l.Tasks) != 2 || l.Tasks[0].ID != ids[2] || l.Tasks[1].ID != ids[1] {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if l.Tasks[0].Result != nil {
		t.Fatal("list includes results")
	}
	_, body = h.do("GET", "/v1/tasks?state=failed", "", nil)
	if json.Unmarshal(body, &l) != nil || len(l.Tasks) != 0 {
		t.Fatalf("failed list: %s", body)
	}
	_, body = h.do("GET", "/v1/tasks?limit=1", "", nil)
	if json.Unmarshal(body, &l) != nil || len(l.Tasks) != 1 || l.Tasks[0].ID != ids[2] {
		t.Fatalf("limit 1: %s", body)
	}
	if resp, _ := h.do("GET", "/v1/tasks?state=done", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad state filter: %d", resp.StatusCode)
	}
}

type fakePlugins []host.PluginStatus

func (f fakePlugins) Plugins() []host.PluginStatus { return f }

// Rollbacks counts the rolled-back entries, as a registry would.
func (f fakePlugins) Rollbacks() int64 {
	var n int64
	for _, p := range f {
		if errors.Is(p.Err, host.ErrRolledBack) {
			n++
		}
	}
	return n
}

func TestPlugins(t *testing.T) {
	h := newHarness(t, Config{Plugins: fakePlugins{
		{File: "mix@1.0.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.0.0", SHA256: "ab12"}},
		{File: "mix@1.1.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.1.0", SHA256: "cd34"}, Active: true},
		{File: "l0@2.wasm", ID: host.PluginID{Name: "l0", Version: "2"}, Err: errors.New("plugin l0@2 refused (rule import-allowlist): env.x")},
		{File: "mix@2.0.0.wasm", ID: host.PluginID{Name: "mix", Version: "2.0.0"}, Loading: true},
	}})
	_, body := h.do("GET", "/v1/plugins", "", nil)
	var l PluginList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	want := []PluginView{
		{File: "mix@1.0.0.wasm", Name: "mix", Version: "1.0.0", SHA256: "ab12", State: "standby"},
		{File: "mix@1.1.0.wasm", Name: "mix", Version: "1.1.0", SHA256: "cd34", Active: true, State: "active"},
		{File: "l0@2.wasm", Name: "l0", Version: "2", State: "refused", Error: "plugin l0@2 refused (rule import-allowlist): env.x"},
		{File: "mix@2.0.0.wasm", Name: "mix", Version: "2.0.0", State: "loading"},
	}
	if fmt.Sprint(l.Plugins) != fmt.Sprint(want) {
		t.Fatalf("plugins\n%+v\nwant\n%+v", l.Plugins, want)
	}
}

func TestShutdownWaitsForRunningTask(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, Queue: 4})
	running := h.submit(1)
	<-h.fake.started
	queued := h.submit(2)
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	for !h.srv.Draining() {
		time.Sleep(time.Millisecond)
	}
	if resp, _ := h.do("GET", "/healthz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz while draining: %d", resp.StatusCode)
	}
	if resp, body := h.do("POST", "/v1/plans", "application/json", planJSON(t, 3)); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("submit while draining: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a task runs", err)
	default:
	}
	if v := h.task(running); v.State != StateRunning {
		t.Fatalf("running task while draining: %+v", v)
	}
	h.fake.release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.waitState(running, StateSucceeded)
	v := h.waitState(queued, StateFailed)
	if v.Cause != "shutdown" || v.Error != "server shut down before the task started" {
		t.Fatalf("queued task at shutdown: %+v", v)
	}
}

func TestShutdownTimeoutCancels(t *testing.T) {
	h := newHarness(t, Config{Workers: 1})
	id := h.submit(1)
	<-h.fake.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no patience at all
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	v := h.waitState(id, StateFailed)
	if v.Cause != "shutdown" || v.Error != "cancelled by server shutdown: plan 1: context canceled" {
		t.Fatalf("cancelled task %+v", v)
	}
}

func TestHealthz(t *testing.T) {
	h := newHarness(t, Config{})
	resp, body := h.do("GET", "/healthz", "", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{\n  \"status\": \"ok\"\n}" {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || err.Error() != "server: a Compactor is required" {
		t.Fatalf("no compactor: %v", err)
	}
	if _, err := New(Config{Compactor: newFake(), Queue: -1}); err == nil || !strings.Contains(err.Error(), "queue -1") {
		t.Fatalf("negative queue: %v", err)
	}
}
