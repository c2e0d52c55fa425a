package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// procStatus reads a "kB" field of /proc/self/status (VmRSS, VmHWM) in
// bytes; 0 where it is unavailable.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return n << 10
		}
	}
	return 0
}

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	// Keep the heap profile taken when the live heap was largest (in-use
	// figures are as of the GC that measured it).
	stopPeak := make(chan struct{})
	peakDone := make(chan []byte)
	go func() {
		var best []byte
		var top int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopPeak:
				peakDone <- best
				return
			case <-t.C:
				if live := liveHeap(); live > top+top/20 {
					top = live
					var b bytes.Buffer
					pprof.Lookup("heap").WriteTo(&b, 0)
					best = b.Bytes()
				}
			}
		}
	}()
	return func() {
		close(stopPeak)
		os.WriteFile(strings.TrimSuffix(path, ".pprof")+".peakheap", <-peakDone, 0o644)
		pprof.StopCPUProfile()
		f.Close()
		// The heap profile's alloc_space shows the allocation churn of the case.
		if h, err := os.Create(strings.TrimSuffix(path, ".pprof") + ".heap"); err == nil {
			pprof.Lookup("allocs").WriteTo(h, 0)
			h.Close()
		}
	}, nil
}

// logCapture keeps the log lines of the case (host, runtime and native
// strategies), so that cases can read figures the strategies log.
var logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

type captureWriter struct{}

func (captureWriter) Write(p []byte) (int, error) {
	logCapture.mu.Lock()
	defer logCapture.mu.Unlock()
	return logCapture.buf.Write(p)
}

func caseLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "bench", Level: hclog.Info, Output: captureWriter{}})
}

func capturedLogs() string {
	logCapture.mu.Lock()
	defer logCapture.mu.Unlock()
	return logCapture.buf.String()
}

func init() {
	sdk.SetNativeLogger(func(_ abi.LogLevel, msg string) { fmt.Fprintln(captureWriter{}, msg) })
}

// nativeStrategy returns the bundled strategy linked into the host.
func nativeStrategy(name string) sdk.Strategy {
	if name == "l0" {
		return l0strategy.New()
	}
	return mixstrategy.New()
}

// admitFile admits WasmDir/<name>.wasm as name@1.0.0.
func admitFile(ctx context.Context, rt *host.Runtime, env Env, name string) (*host.Plugin, error) {
	b, err := os.ReadFile(filepath.Join(env.WasmDir, name+".wasm"))
	if err != nil {
		return nil, err
	}
	return rt.Admit(ctx, name+"@1.0.0", b)
}

// load1 is the one-minute load average (0 where unavailable).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// watchLiveHeap samples the Go heap's live bytes (as of each GC) every
// 10 ms until the returned function is called, which returns the most seen.
func watchLiveHeap() func() int64 {
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var top int64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			top = max(top, liveHeap())
			select {
			case <-stop:
				done <- top
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

// liveHeap is the Go heap's live bytes as of the last GC.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
