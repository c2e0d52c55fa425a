package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/cmd/compact-host/internal/server"
)

// buildWasm builds a strategy package (relative to this directory) into
// out with the wasip1 reactor settings.
func buildWasm(t *testing.T, pkg, out string, ldflags string) {
	t.Helper()
	args := []string{"build", "-buildmode=c-shared", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

// serveProc is a running `compact-host serve` with its JSON log lines.
type serveProc struct {
	cmd    *exec.Cmd
	base   string       // http://127.0.0.1:port or https://
	client *http.Client // trusts the server's certificate under TLS
	token  string       // sent as a bearer token when set
	mu     sync.Mutex
	logs   []map[string]any
	raw    bytes.Buffer
	done   chan struct{} // closed when stderr is drained
}

// startServe runs serve with --log-json on a free port and waits for its
// "serving" line and a healthy /healthz.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	return startServeWith(t, &serveProc{client: http.DefaultClient}, nil, args...)
}

// startServeWith is startServe with extra environment variables and p's
// client, scheme (https when p.client trusts a certificate) and token.
func startServeWith(t *testing.T, p *serveProc, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(cliBinary, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-json"}, args...)...)
	cmd.Env = append(append(os.Environ(), "COMPACT_HOST_STORAGE="), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			p.mu.Lock()
			p.raw.Write(sc.Bytes())
			p.raw.WriteByte('\n')
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.logs = append(p.logs, m)
				if m["@message"] == "serving" {
					addr <- fmt.Sprint(m["addr"])
				}
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
		if p.client.Transport != nil {
			p.base = "https://" + a
		}
	case <-p.done:
		cmd.Wait()
		t.Fatalf("serve exited before serving:\n%s", p.stderr())
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not log its address:\n%s", p.stderr())
	}
	p.waitFor(t, "healthz 200", func() bool {
		req, _ := http.NewRequest("GET", p.base+"/healthz", nil)
		if p.token != "" {
			req.Header.Set("Authorization", "Bearer "+p.token)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func (p *serveProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// logged returns the log lines with the given message.
func (p *serveProc) logged(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, m := range p.logs {
		if m["@message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds (a generous bound only guards against
// a hang; nothing asserts how long it took).
func (p *serveProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; serve's log:\n%s", what, p.stderr())
		}
	}
}

func (p *serveProc) request(t *testing.T, method, path, ctype string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (p *serveProc) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := p.request(t, "GET", path, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// runPlan submits a plan and polls its task until it ends; it fails the
// test unless the task succeeded, and returns the result.
func (p *serveProc) runPlan(t *testing.T, ctype string, plan []byte) (server.TaskView, *datapb.CompactionPlanResult) {
	t.Helper()
	v := p.finishPlan(t, ctype, plan)
	if v.State != server.StateSucceeded {
		t.Fatalf("task %s %s (%s): %s\n%s", v.ID, v.State, v.Cause, v.Error, p.stderr())
	}
	var res datapb.CompactionPlanResult
	if err := protojson.Unmarshal(v.Result, &res); err != nil {
		t.Fatalf("task %s result: %v\n%s", v.ID, err, v.Result)
	}
	return v, &res
}

// finishPlan submits a plan and polls its task until it ends.
func (p *serveProc) finishPlan(t *testing.T, ctype string, plan []byte) server.TaskView {
	t.Helper()
	code, body := p.request(t, "POST", "/v1/plans", ctype, plan)
	var sub server.SubmitResponse
	if code != http.StatusAccepted || json.Unmarshal(body, &sub) != nil {
		t.Fatalf("submit: %d %s", code, body)
	}
	var v server.TaskView
	p.waitFor(t, "task "+sub.TaskID, func() bool {
		v = server.TaskView{}
		p.getJSON(t, sub.Href, &v)
		return v.State == server.StateSucceeded || v.State == server.StateFailed
	})
	return v
}

// scrape returns /metrics as series -> value.
func (p *serveProc) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	code, body := p.request(t, "GET", "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(line, "# ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bundled wasm strategies")
	}
	dir := t.TempDir()
	store, plans, plugins := filepath.Join(dir, "data"), filepath.Join(dir, "plans"), filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	buildWasm(t, "../../plugins/mix", filepath.Join(plugins, "mix@1.0.0.wasm"), "")
	buildWasm(t, "../../plugins/l0", filepath.Join(plugins, "l0@1.0.0.wasm"), "")
	next := filepath.Join(dir, "mix@1.1.0.wasm")
	buildWasm(t, "./testdata/mixnext", next, "-X main.version=1.1.0")

	r := runCLI(t, "gen", "--storage", store, "--plans", plans, "--segments", "2", "--rows", "3000", "--dim", "4", "--json")
	if r.code != 0 {
		t.Fatalf("gen: exit %d: %s", r.code, r.stderr)
	}
	var sum struct{ Kept int64 }
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Kept == 0 {
		t.Fatalf("gen summary: %v\n%s", err, r.stdout)
	}
	mixPlan, err := os.ReadFile(filepath.Join(plans, "mix-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	l0JSON, err := os.ReadFile(filepath.Join(plans, "l0-plan.json"))
	if err != nil {
		t.Fatal(err)
	}

	p := startServe(t, "--storage", store, "--plugins", plugins, "--memory", "1GiB", "--poll-interval", "100ms",
		"--workers", "2", "--queue", "4")

	// The registry serves what the directory holds.
	var pl server.PluginList
	p.getJSON(t, "/v1/plugins", &pl)
	if len(pl.Plugins) != 2 || pl.Plugins[0].File != "l0@1.0.0.wasm" || !pl.Plugins[0].Active ||
		pl.Plugins[1].File != "mix@1.0.0.wasm" || !pl.Plugins[1].Active || len(pl.Plugins[1].SHA256) != 64 {
		t.Fatalf("plugins: %+v", pl.Plugins)
	}

	// A mix plan as protojson: the result keeps exactly the rows gen says survive.
	v, res := p.runPlan(t, "application/json", mixPlan)
	var rows int64
	for _, s := range res.GetSegments() {
		rows += s.GetNumOfRows()
	}
	if res.GetState() != datapb.CompactionTaskState_completed || rows != sum.Kept || v.Progress.RowsWritten != sum.Kept || v.Progress.RowsRead != 6000 {
		t.Fatalf("mix result: state %s, %d rows (want %d), progress %+v", res.GetState(), rows, sum.Kept, v.Progress)
	}

	// An L0 plan as binary protobuf.
	var l0 datapb.CompactionPlan
	if err := protojson.Unmarshal(l0JSON, &l0); err != nil {
		t.Fatal(err)
	}
	l0Bin, _ := proto.Marshal(&l0)
	_, res = p.runPlan(t, server.ContentTypeProtobuf, l0Bin)
	if res.GetType() != datapb.CompactionType_Level0DeleteCompaction || len(res.GetSegments()) == 0 || len(res.GetSegments()[0].GetDeltalogs()) == 0 {
		t.Fatalf("l0 result: %v", res)
	}

	// Refusals.
	if code, body := p.request(t, "POST", "/v1/plans", "application/json", []byte(`{"planID": `)); code != http.StatusBadRequest || !strings.Contains(string(body), "bad plan") {
		t.Fatalf("bad plan: %d %s", code, body)
	}
	if code, _ := p.request(t, "GET", "/v1/tasks/ffffffffffffffff", "", nil); code != http.StatusNotFound {
		t.Fatalf("unknown task: %d", code)
	}

	// A plan Milvus's rules refuse is refused at submission, naming the plan and the rule.
	var broken datapb.CompactionPlan
	if err := protojson.Unmarshal(mixPlan, &broken); err != nil {
		t.Fatal(err)
	}
	broken.PlanID++
	broken.PreAllocatedLogIDs = nil
	brokenJSON, _ := protojson.Marshal(&broken)
	code, body := p.request(t, "POST", "/v1/plans", "application/json", brokenJSON)
	if code != http.StatusBadRequest || !strings.Contains(string(body), fmt.Sprintf("plan %d", broken.PlanID)) ||
		!strings.Contains(string(body), "pre_allocated_logIDs") {
		t.Fatalf("submit broken plan: %d %s", code, body)
	}

	m := p.scrape(t)
	want := map[string]float64{
		`compact_host_tasks_finished_total{state="succeeded"}`:    2,
		`compact_host_tasks_finished_total{state="failed"}`:       0,
		`compact_host_plans_total{type="MixCompaction"}`:          1,
		`compact_host_plans_total{type="Level0DeleteCompaction"}`: 1,
		`compact_host_plans_rejected_total{reason="bad_plan"}`:    2,
		`compact_host_rows_read_total`:                            6000,
		`compact_host_pool_total_bytes`:                           1 << 30,
		`compact_host_pool_used_bytes`:                            0,
		`compact_host_pool_leases`:                                0,
		`compact_host_plugins{status="active"}`:                   2,
		`compact_host_plugin_failures_total{cause="trap"}`:        0,
		`compact_host_queue_capacity`:                             4,
		`compact_host_tasks{state="running"}`:                     0,
	}
	for k, wv := range want {
		if got, ok := m[k]; !ok || got != wv {
			t.Errorf("metric %s = %v (present %v), want %v", k, got, ok, wv)
		}
	}
	// rows written: the mix plan's kept rows plus the L0 plan's routed deletes.
	if m["compact_host_rows_written_total"] < float64(sum.Kept) || m["compact_host_uptime_seconds"] <= 0 {
		t.Errorf("rows written %v (kept %d), uptime %v", m["compact_host_rows_written_total"], sum.Kept, m["compact_host_uptime_seconds"])
	}

	// Hot swap: a newer mix appears in the directory and takes over.
	if err := os.Rename(next, filepath.Join(plugins, "mix@1.1.0.wasm")); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "mix@1.1.0 active", func() bool {
		p.getJSON(t, "/v1/plugins", &pl)
		for _, e := range pl.Plugins {
			if e.File == "mix@1.1.0.wasm" {
				return e.Active && e.Error == ""
			}
		}
		return false
	})
	for _, e := range pl.Plugins {
		if e.File == "mix@1.0.0.wasm" && e.Active {
			t.Fatalf("mix@1.0.0 still active beside 1.1.0: %+v", pl.Plugins)
		}
	}
	p.runPlan(t, "application/json", shiftedPlan(t, mixPlan, 4))
	done := p.logged("compaction done")
	if len(done) != 3 || !strings.HasPrefix(fmt.Sprint(done[2]["plugin"]), "mix@1.1.0 ") {
		t.Fatalf("the rerun did not use mix@1.1.0: %v", done)
	}

	// A plan whose output ranges overlap a queued or running plan's is refused with 409; once the
	// first has finished, the same plan is accepted but its task fails on the first output key it
	// finds taken, and nothing of the first run is touched.
	fresh := shiftedPlan(t, mixPlan, 50)
	code, body = p.request(t, "POST", "/v1/plans", "application/json", fresh)
	var first server.SubmitResponse
	if code != http.StatusAccepted || json.Unmarshal(body, &first) != nil {
		t.Fatalf("submit: %d %s", code, body)
	}
	var other datapb.CompactionPlan // another plan ID, the same output ranges
	if err := protojson.Unmarshal(fresh, &other); err != nil {
		t.Fatal(err)
	}
	other.PlanID += 1000
	otherJSON, _ := protojson.Marshal(&other)
	if code, body := p.request(t, "POST", "/v1/plans", "application/json", otherJSON); code != http.StatusConflict ||
		!strings.Contains(string(body), "overlap") {
		t.Fatalf("overlapping submit: %d %s, want 409 naming the overlap", code, body)
	}
	var fv server.TaskView
	p.waitFor(t, "task "+first.TaskID, func() bool {
		fv = server.TaskView{}
		p.getJSON(t, first.Href, &fv)
		return fv.State == server.StateSucceeded || fv.State == server.StateFailed
	})
	if fv.State != server.StateSucceeded {
		t.Fatalf("first task %s: %s", fv.State, fv.Error)
	}
	if v := p.finishPlan(t, "application/json", fresh); v.State != server.StateFailed || !strings.Contains(v.Error, "already exists") {
		t.Fatalf("rerun of a finished plan: %s %q, want failed with an output key already taken", v.State, v.Error)
	}
	var firstRes datapb.CompactionPlanResult
	if err := protojson.Unmarshal(fv.Result, &firstRes); err != nil {
		t.Fatal(err)
	}
	for _, s := range firstRes.GetSegments() {
		for _, fb := range s.GetInsertLogs() {
			for _, b := range fb.GetBinlogs() {
				if st, err := os.Stat(filepath.Join(store, b.GetLogPath())); err != nil || st.Size() != b.GetLogSize() {
					t.Fatalf("the rerun touched %s: %v", b.GetLogPath(), err)
				}
			}
		}
	}

	// Graceful shutdown on SIGTERM with plans in flight: every task that
	// started finishes, the ones still queued fail with cause shutdown.
	var ids []string
	var sub server.SubmitResponse
	for i := int64(1); i <= 3; i++ {
		code, body := p.request(t, "POST", "/v1/plans", "application/json", shiftedPlan(t, mixPlan, i))
		if code != http.StatusAccepted || json.Unmarshal(body, &sub) != nil {
			t.Fatalf("submit plan copy %d: %d %s", i, code, body)
		}
		ids = append(ids, sub.TaskID)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	err = p.cmd.Wait()
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, p.stderr())
	}
	if len(p.logged("shutdown complete: every task finished")) != 1 || len(p.logged("stopped")) != 1 {
		t.Fatalf("shutdown not logged:\n%s", p.stderr())
	}
	outcome := map[string]string{}
	for _, msg := range []string{"task started", "task succeeded", "task failed"} {
		for _, m := range p.logged(msg) {
			id := fmt.Sprint(m["task"])
			outcome[id] += msg + "/" + fmt.Sprint(m["cause"]) + ";"
		}
	}
	for _, id := range ids {
		t.Logf("task %s at shutdown: %s", id, outcome[id])
		switch outcome[id] {
		case "task started/<nil>;task succeeded/<nil>;", "task failed/shutdown;":
		default:
			t.Errorf("task %s at shutdown: %q; want started and succeeded, or failed with cause shutdown", id, outcome[id])
		}
	}
	if _, err := http.Get(p.base + "/healthz"); err == nil {
		t.Fatal("serve still answers after exiting")
	}
}

// shiftedPlan returns copy k of a protojson plan: plan ID plus 10+k, and
// both pre-allocated output ID ranges moved past k copies of themselves.
// Outputs are created, never overwritten, so each run needs IDs of its own.
func shiftedPlan(t *testing.T, planJSON []byte, k int64) []byte {
	t.Helper()
	var pl datapb.CompactionPlan
	if err := protojson.Unmarshal(planJSON, &pl); err != nil {
		t.Fatal(err)
	}
	pl.PlanID += 10 + k
	for _, r := range []*datapb.IDRange{pl.GetPreAllocatedSegmentIDs(), pl.GetPreAllocatedLogIDs()} {
		n := r.GetEnd() - r.GetBegin()
		r.Begin, r.End = r.Begin+k*n, r.End+k*n
	}
	pl.BeginLogID = pl.GetPreAllocatedLogIDs().GetBegin()
	b, err := protojson.Marshal(&pl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeBadFlags(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args    []string
		env     string
		code    int
		message string
	}{
		{[]string{"serve", "--memory", "lots"}, "", exitUsage, `invalid argument "lots" for "--memory"`},
		{[]string{"serve", "--storage", dir, "--plugins", filepath.Join(dir, "nope")}, "", exitNotFound, "--plugins " + filepath.Join(dir, "nope")},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--policy", "sometimes"}, "", exitUsage, `--policy: mempool: policy "sometimes"`},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--workers", "0"}, "", exitUsage, "--workers must be >= 1, got 0"},
		{[]string{"serve", "--storage", dir, "--plugins", dir}, "COMPACT_HOST_POLICY=load:0.5,hysteresis=100%", exitUsage,
			`--policy: mempool: policy "load:0.5,hysteresis=100%": load: hysteresis 1 must be in [0, 1)`},
		{[]string{"serve", "--storage", dir, "--plugins", dir}, "COMPACT_HOST_QUEUE=many", exitUsage, `$COMPACT_HOST_QUEUE="many" (for --queue)`},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--listen", "256.0.0.1:1"}, "", exitUsage, "--listen 256.0.0.1:1"},
		{[]string{"serve", "extra"}, "", exitUsage, "takes no arguments"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--listen", "0.0.0.0:0"}, "", exitUsage,
			"--listen 0.0.0.0:0 is not a loopback address and no API token is set: give --token-file or $COMPACT_HOST_TOKEN, or --insecure-no-auth"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--listen", ":0"}, "", exitUsage, "--listen :0 is not a loopback address"},
		{[]string{"serve", "--storage", dir, "--plugins", dir}, "COMPACT_HOST_TOKEN=short", exitUsage, "the API token is 5 bytes; use at least 16"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--token-file", filepath.Join(dir, "none")}, "COMPACT_HOST_TOKEN=0123456789abcdef", exitUsage, "give the token once"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--insecure-no-auth"}, "COMPACT_HOST_TOKEN=0123456789abcdef", exitUsage, "--insecure-no-auth contradicts the token"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--token-file", filepath.Join(dir, "none")}, "", exitNotFound, "--token-file: open " + filepath.Join(dir, "none")},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--tls-cert", filepath.Join(dir, "c.pem")}, "", exitUsage, "--tls-cert and --tls-key go together"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")}, "", exitUsage, "--tls-cert " + filepath.Join(dir, "c.pem")},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--rollback-failures", "5", "--rollback-window", "3"}, "", exitUsage, "--rollback-failures 5 cannot be reached within --rollback-window 3"},
		{[]string{"serve", "--storage", dir, "--plugins", dir, "--body-timeout", "0s"}, "", exitUsage, "--body-timeout"},
	}
	for _, c := range cases {
		// A serve that starts instead of refusing is killed after a minute.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, cliBinary, c.args...)
		cmd.Env = append(os.Environ(), "COMPACT_HOST_STORAGE=", c.env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		// Everything but the message line is a log line (--listen fails after startup logs).
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if code != c.code || !strings.HasPrefix(last, "compact-host: ") || !strings.Contains(last, c.message) {
			t.Errorf("%v %s: exit %d, stderr %q; want exit %d mentioning %q", c.args, c.env, code, stderr.String(), c.code, c.message)
		}
	}
}

// TestServeLoadPolicy: a combined policy from the environment reaches the
// pool, capped at once by the load part's max= (this machine has more than
// 128MiB available).
func TestServeLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	p := startServeWith(t, &serveProc{client: http.DefaultClient}, []string{"COMPACT_HOST_POLICY=static:0.5; load:0.5,max=64MiB"},
		"--storage", filepath.Join(dir, "data"), "--plugins", dir, "--memory", "1GiB")
	serving := p.logged("serving")
	if len(serving) != 1 || serving[0]["policy"] != "static:0.5;load:0.5,max=64MiB" || serving[0]["pool"] != "64MiB" {
		t.Fatalf("serving line: %v", serving)
	}
}

func TestServePluginsFromStoreURLAndSIGINT(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	os.Mkdir(plugins, 0o755)
	p := startServe(t, "--storage", filepath.Join(dir, "data"), "--plugins", "local://"+plugins)
	var pl server.PluginList
	p.getJSON(t, "/v1/plugins", &pl)
	if pl.Plugins == nil || len(pl.Plugins) != 0 {
		t.Fatalf("plugins: %+v", pl.Plugins)
	}
	if w := p.logged("no admitted plugins yet: plans fail with cause no_plugin until a name@version.wasm appears"); len(w) != 1 {
		t.Fatalf("no warning about the empty plugin store:\n%s", p.stderr())
	}
	if serving := p.logged("serving"); len(serving) != 1 || serving[0]["plugins"] != "local://"+plugins+"/" {
		t.Fatalf("serving line: %v", serving)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGINT: %v\n%s", err, p.stderr())
	}
}
