package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"

	"github.com/compacthost/compacthost/host"
)

// progressReporter shows a running task's counters: a one-line bar redrawn in place on a
// terminal, or a log line every few seconds elsewhere (files and pipes get no control codes).
type progressReporter struct {
	mode  string // "bar", "log" or "none"
	out   io.Writer
	log   hclog.Logger
	total int64 // input rows expected, 0 if unknown

	mu      sync.Mutex
	start   time.Time
	lastOut time.Time
	last    host.Progress
	drawn   bool
}

func newProgressReporter(mode string, out *os.File, log hclog.Logger, totalRows int64) *progressReporter {
	if mode == "auto" {
		mode = "log"
		if isatty.IsTerminal(out.Fd()) {
			mode = "bar"
		}
	}
	return &progressReporter{mode: mode, out: out, log: log, total: totalRows, start: time.Now()}
}

// update receives the host's progress callbacks.
func (p *progressReporter) update(pr host.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = pr
	now := time.Now()
	switch p.mode {
	case "bar":
		if now.Sub(p.lastOut) < 100*time.Millisecond {
			return
		}
		fmt.Fprintf(p.out, "\r\033[K%s", p.line(now))
		p.drawn = true
	case "log":
		if now.Sub(p.lastOut) < 2*time.Second {
			return
		}
		p.log.Info("progress", "rows_read", pr.RowsRead, "rows_total", p.total,
			"mb_read", fmt.Sprintf("%.1f", float64(pr.BytesRead)/1e6), "rows_written", pr.RowsWritten,
			"elapsed", now.Sub(p.start).Round(time.Second))
	default:
		return
	}
	p.lastOut = now
}

// line renders "rows 120,000/400,000 (30%)  85.3 MB read  42.1 MB/s  ETA 7s".
func (p *progressReporter) line(now time.Time) string {
	pr := p.last
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(pr.BytesRead) / 1e6 / elapsed
	}
	s := fmt.Sprintf("rows %d", pr.RowsRead)
	if p.total > 0 {
		frac := float64(pr.RowsRead) / float64(p.total)
		s += fmt.Sprintf("/%d (%.0f%%)", p.total, 100*frac)
		if frac > 0 && frac < 1 {
			s += fmt.Sprintf("  ETA %s", time.Duration(elapsed*(1-frac)/frac*float64(time.Second)).Round(time.Second))
		}
	}
	return s + fmt.Sprintf("  %.1f MB read  %.1f MB/s  %d rows written", float64(pr.BytesRead)/1e6, rate, pr.RowsWritten)
}

// finish ends the bar's line so later output starts on a fresh one.
func (p *progressReporter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintf(p.out, "\r\033[K%s\n", p.line(time.Now()))
	}
}
