package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/mempool"
)

// exposition is a parsed Prometheus text page.
type exposition struct {
	types   map[string]string  // family -> counter/gauge
	helps   map[string]string  // family -> help text
	samples map[string]float64 // `name{labels}` -> value
	order   []string           // families in order of appearance
}

var (
	helpLine   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$`)
	typeLine   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$`)
)

// parseExposition checks the page line by line: HELP then TYPE before a
// family's samples, every sample belongs to the family just declared, no
// family twice, no duplicate series, numeric values, counters end in _total.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{types: map[string]string{}, helps: map[string]string{}, samples: map[string]float64{}}
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("exposition does not end with a newline")
	}
	current := ""
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case helpLine.MatchString(line):
			m := helpLine.FindStringSubmatch(line)
			if _, dup := e.helps[m[1]]; dup {
				t.Fatalf("line %d: family %s declared twice", i+1, m[1])
			}
			e.helps[m[1]], current = m[2], m[1]
			e.order = append(e.order, m[1])
		case typeLine.MatchString(line):
			m := typeLine.FindStringSubmatch(line)
			if m[1] != current || e.types[m[1]] != "" {
				t.Fatalf("line %d: TYPE for %s does not follow its HELP", i+1, m[1])
			}
			e.types[m[1]] = m[2]
			if m[2] == "counter" && !strings.HasSuffix(m[1], "_total") {
				t.Fatalf("line %d: counter %s does not end in _total", i+1, m[1])
			}
			if m[2] != "counter" && strings.HasSuffix(m[1], "_total") {
				t.Fatalf("line %d: %s %s ends in _total", i+1, m[2], m[1])
			}
		case sampleLine.MatchString(line):
			m := sampleLine.FindStringSubmatch(line)
			if m[1] != current || e.types[current] == "" {
				t.Fatalf("line %d: sample %s outside its family (current %s)", i+1, m[1], current)
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				t.Fatalf("line %d: value %q: %v", i+1, m[3], err)
			}
			key := m[1] + m[2]
			if _, dup := e.samples[key]; dup {
				t.Fatalf("line %d: duplicate series %s", i+1, key)
			}
			e.samples[key] = v
		default:
			t.Fatalf("line %d does not parse: %q", i+1, line)
		}
	}
	return e
}

func TestMetricsExposition(t *testing.T) {
	pool, err := mempool.NewPool(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := pool.PreFetch(context.Background(), "someone", 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Return(lease)
	plugins := fakePlugins{
		{File: "mix@1.0.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.0.0"}},
		{File: "mix@1.1.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.1.0"}, Active: true},
		{File: "bad@1.wasm", ID: host.PluginID{Name: "bad", Version: "1"}, Err: errors.New("refused")},
		{File: "mix@1.2.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.2.0"}, Err: &host.RollbackError{Failures: 3, Tasks: 3, Last: "trap"}},
		{File: "mix@1.3.0.wasm", ID: host.PluginID{Name: "mix", Version: "1.3.0"}, Loading: true},
	}
	h := newHarness(t, Config{Workers: 1, Queue: 1, Pool: pool, Plugins: plugins})

	ok := h.submit(1)
	<-h.fake.started
	h.fake.release <- nil
	h.waitState(ok, StateSucceeded)
	trap := h.submit(2)
	<-h.fake.started
	h.fake.release <- fmt.Errorf("plan 2: %w", &host.TaskError{Kind: host.ErrOutOfMemory})
	h.waitState(trap, StateFailed)
	storage := h.submit(3)
	<-h.fake.started
	h.fake.release <- errors.New("plan 3: reading files/insert_log/1/2/3/100/7: connection refused")
	h.waitState(storage, StateFailed)
	h.do("POST", "/v1/plans", "application/json", []byte("{"))
	running := h.submit(4)
	<-h.fake.started // running, reported progress 250 rows
	h.submit(5)      // queued
	h.do("POST", "/v1/plans", "application/json", planJSON(t, 6))

	resp, body := h.do("GET", "/metrics", "", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	e := parseExposition(t, string(body))
	wantFamilies := []string{
		"compact_host_tasks", "compact_host_tasks_finished_total", "compact_host_task_failures_total",
		"compact_host_plugin_failures_total", "compact_host_plans_total", "compact_host_plans_rejected_total",
		"compact_host_queue_length", "compact_host_queue_capacity", "compact_host_workers",
		"compact_host_deletes_read_total", "compact_host_rows_read_total", "compact_host_read_bytes_total", "compact_host_rows_written_total",
		"compact_host_written_bytes_total",
		"compact_host_pool_total_bytes", "compact_host_pool_used_bytes", "compact_host_pool_leases", "compact_host_pool_waiters",
		"compact_host_plugins", "compact_host_plugin_rollbacks_total", "compact_host_shutting_down", "compact_host_uptime_seconds",
	}
	if strings.Join(e.order, " ") != strings.Join(wantFamilies, " ") {
		t.Fatalf("families\n%v\nwant\n%v", e.order, wantFamilies)
	}
	want := map[string]float64{
		`compact_host_tasks{state="queued"}`:                        1,
		`compact_host_tasks{state="running"}`:                       1,
		`compact_host_tasks_finished_total{state="succeeded"}`:      1,
		`compact_host_tasks_finished_total{state="failed"}`:         2,
		`compact_host_task_failures_total{cause="out_of_memory"}`:   1,
		`compact_host_task_failures_total{cause="error"}`:           1,
		`compact_host_plugin_failures_total{cause="out_of_memory"}`: 1,
		`compact_host_plans_total{type="MixCompaction"}`:            5,
		`compact_host_plans_rejected_total{reason="bad_plan"}`:      1,
		`compact_host_plans_rejected_total{reason="queue_full"}`:    1,
		`compact_host_queue_length`:                                 1,
		`compact_host_queue_capacity`:                               1,
		`compact_host_workers`:                                      1,
		`compact_host_deletes_read_total`:                           4 * 30,
		`compact_host_rows_read_total`:                              4 * 250,
		`compact_host_read_bytes_total`:                             4 * 10000,
		`compact_host_rows_written_total`:                           4 * 200,
		`compact_host_written_bytes_total`:                          4 * 8000,
		`compact_host_pool_total_bytes`:                             1 << 30,
		`compact_host_pool_used_bytes`:                              256 << 20,
		`compact_host_pool_leases`:                                  1,
		`compact_host_pool_waiters`:                                 0,
		`compact_host_plugins{status="active"}`:                     1,
		`compact_host_plugins{status="standby"}`:                    1,
		`compact_host_plugins{status="refused"}`:                    2,
		`compact_host_plugins{status="loading"}`:                    1,
		`compact_host_plugin_rollbacks_total`:                       1,
		`compact_host_shutting_down`:                                0,
	}
	for k, v := range want {
		got, ok := e.samples[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, k := range host.PluginFailureCauses() { // every plugin cause starts at zero
		key := `compact_host_plugin_failures_total{cause="` + k + `"}`
		if _, ok := want[key]; !ok {
			want[key] = 0
		}
	}
	if n := len(e.samples); n != len(want)+1 { // + uptime
		t.Errorf("%d series, want %d:\n%s", n, len(want)+1, body)
	}
	if e.samples["compact_host_uptime_seconds"] <= 0 {
		t.Errorf("uptime %v", e.samples["compact_host_uptime_seconds"])
	}
	h.fake.release <- nil
	h.waitState(running, StateSucceeded)
	<-h.fake.started
	h.fake.release <- nil
}

func TestMetricsEscaping(t *testing.T) {
	var b strings.Builder
	e := expo{w: &b}
	e.family("x_total", "counter", "a \\ backslash\nand newline")
	e.sample("x_total", 1.5, "k", "quote \" back \\ nl \n")
	e.sample("x_total", 1<<40)
	want := "# HELP x_total a \\\\ backslash\\nand newline\n# TYPE x_total counter\n" +
		`x_total{k="quote \" back \\ nl \n"} 1.5` + "\nx_total 1099511627776\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	parseExposition(t, b.String())
}
