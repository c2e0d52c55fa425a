package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compacthost/compacthost/host"
)

// counters are the task metrics, from the executor's and the server's.
type counters struct {
	queued, running int
	finished        map[State]int64
	plansByType     map[string]int64
	rejected        map[string]int64 // by reason: queue_full, bad_plan, duplicate, ranges_in_use, too_large, shutting_down
	failures        map[string]int64 // failed tasks by host.CauseKind
	pluginFailures  map[string]int64 // failed tasks whose error host.IsPluginFailure, by cause
	progress        Progress         // totals over every task
}

// metricsSnapshot is everything /metrics prints.
type metricsSnapshot struct {
	c        counters
	queueLen int
	queueCap int
	workers  int
	uptime   time.Duration
	draining bool
}

func (s *Server) snapshot() metricsSnapshot {
	st := s.exec.Stats()
	c := counters{
		queued: st.Queued, running: st.Running,
		finished: map[State]int64{
			StateSucceeded: st.Finished[host.TaskCompleted],
			StateFailed:    st.Finished[host.TaskFailed] + st.Finished[host.TaskCancelled],
		},
		plansByType: st.Submitted, rejected: st.Rejected, failures: st.Failures, pluginFailures: st.PluginFailures,
		progress: progressOf(st.Progress),
	}
	s.mu.Lock()
	for k, v := range s.rejected {
		c.rejected[k] += v
	}
	s.mu.Unlock()
	return metricsSnapshot{c: c, queueLen: st.Queued, queueCap: st.QueueCapacity, workers: st.Workers,
		uptime: time.Since(s.started), draining: s.exec.Closing()}
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	s.WriteMetrics(bw)
	_ = bw.Flush()
}

// WriteMetrics writes every metric in the Prometheus text exposition format
// (version 0.0.4). Metric names start with compact_host_; counters end in
// _total.
func (s *Server) WriteMetrics(w io.Writer) {
	m := s.snapshot()
	c := m.c
	e := expo{w: w}

	e.family("compact_host_tasks", "gauge", "Tasks queued or running now, by state.")
	e.sample("compact_host_tasks", float64(c.queued), "state", string(StateQueued))
	e.sample("compact_host_tasks", float64(c.running), "state", string(StateRunning))
	e.family("compact_host_tasks_finished_total", "counter", "Tasks finished since start, by final state.")
	e.sample("compact_host_tasks_finished_total", float64(c.finished[StateSucceeded]), "state", string(StateSucceeded))
	e.sample("compact_host_tasks_finished_total", float64(c.finished[StateFailed]), "state", string(StateFailed))
	e.labelled("compact_host_task_failures_total", "counter", "Failed tasks by cause kind.", "cause", c.failures)
	e.labelled("compact_host_plugin_failures_total", "counter",
		"Failed tasks that were the strategy plugin's fault or found no admitted plugin, by cause kind.", "cause", c.pluginFailures)
	e.labelled("compact_host_plans_total", "counter", "Plans accepted into the queue, by compaction type.", "type", c.plansByType)
	e.labelled("compact_host_plans_rejected_total", "counter",
		"Plans refused at submission, by reason (queue_full, bad_plan, duplicate, ranges_in_use, too_large, shutting_down).", "reason", c.rejected)

	e.gauge("compact_host_queue_length", "Plans waiting for a worker.", float64(m.queueLen))
	e.gauge("compact_host_queue_capacity", "Plans the queue holds before refusing with 429.", float64(m.queueCap))
	e.gauge("compact_host_workers", "Workers running plans (the memory pool may hold some waiting).", float64(m.workers))

	e.counter("compact_host_deletes_read_total", "Delete records read from deltalogs.", c.progress.DeletesRead)
	e.counter("compact_host_rows_read_total", "Rows read from input segments.", c.progress.RowsRead)
	e.counter("compact_host_read_bytes_total", "Uncompressed bytes read from input segments.", c.progress.BytesRead)
	e.counter("compact_host_rows_written_total", "Rows written to output segments.", c.progress.RowsWritten)
	e.counter("compact_host_written_bytes_total", "Bytes written to output segments.", c.progress.BytesWritten)

	if p := s.cfg.Pool; p != nil {
		st := p.Stats()
		e.gauge("compact_host_pool_total_bytes", "Memory pool size.", float64(st.Total))
		e.gauge("compact_host_pool_used_bytes", "Memory pool bytes held by leases.", float64(st.Used))
		e.gauge("compact_host_pool_leases", "Memory pool leases held.", float64(st.Leases))
		e.gauge("compact_host_pool_waiters", "Tasks waiting for a memory pool lease or a lease to grow.", float64(st.Waiters))
	}
	if s.cfg.Plugins != nil {
		by := map[string]int64{"active": 0, "standby": 0, "loading": 0, "refused": 0}
		for _, p := range s.plugins() {
			by[p.State]++
		}
		e.labelled("compact_host_plugins", "gauge",
			"Plugin binaries in the registry: active (serving new tasks), standby (admitted, older version), loading (being admitted), refused (at admission or rolled back).", "status", by)
		if rc, ok := s.cfg.Plugins.(interface{ Rollbacks() int64 }); ok {
			e.counter("compact_host_plugin_rollbacks_total", "Plugin versions rolled back after failing their first tasks.", rc.Rollbacks())
		}
	}
	draining := 0.0
	if m.draining {
		draining = 1
	}
	e.gauge("compact_host_shutting_down", "1 while the server drains for shutdown.", draining)
	e.gauge("compact_host_uptime_seconds", "Seconds since the server started.", m.uptime.Seconds())
}

// expo writes the text exposition format.
type expo struct{ w io.Writer }

func (e expo) family(name, typ, help string) {
	fmt.Fprintf(e.w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

// sample writes one sample with label pairs (name, value, name, value, ...).
func (e expo) sample(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	b.WriteByte('\n')
	io.WriteString(e.w, b.String())
}

func (e expo) gauge(name, help string, v float64) {
	e.family(name, "gauge", help)
	e.sample(name, v)
}

func (e expo) counter(name, help string, v int64) {
	e.family(name, "counter", help)
	e.sample(name, float64(v))
}

// labelled writes a family with one sample per map key, sorted.
func (e expo) labelled(name, typ, help, label string, vals map[string]int64) {
	e.family(name, typ, help)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.sample(name, float64(vals[k]), label, k)
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
