package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Environment variables of a case process.
const (
	envCase = "COMPACT_HOST_BENCH_CASE"
	envEnv  = "COMPACT_HOST_BENCH_ENV"
)

// IsChild reports whether this process was started by RunCases to run one
// case.
func IsChild() bool { return os.Getenv(envCase) != "" }

// ChildMain runs the case described by the environment and writes its
// Result as JSON to stdout. It returns the process exit code.
func ChildMain() int {
	var c Case
	var env Env
	if err := json.Unmarshal([]byte(os.Getenv(envCase)), &c); err != nil {
		fmt.Fprintln(os.Stderr, "bench child: bad case:", err)
		return 2
	}
	if err := json.Unmarshal([]byte(os.Getenv(envEnv)), &env); err != nil {
		fmt.Fprintln(os.Stderr, "bench child: bad env:", err)
		return 2
	}
	r, err := Run(context.Background(), env, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// RunCase runs c in a new process of exe (a program that calls ChildMain
// when IsChild) and returns its result; the child's peak RSS from
// getrusage is cross-checked into Extra["rusage_maxrss"].
func RunCase(ctx context.Context, exe string, env Env, c Case) (*Result, error) {
	cb, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	eb, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), envCase+"="+string(cb), envEnv+"="+string(eb))
	if c.MemLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+c.MemLimit)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("case %s: %v\n%s", c.Name, err, strings.TrimSpace(errb.String()))
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("case %s: reading the result: %v (stdout %q)", c.Name, err, out.String())
	}
	return &r, nil
}

// BuildWasm builds the bundled strategies for wasip1 into dir: mix.wasm,
// l0.wasm and mix@1.1.0.wasm (the mix strategy under a newer version, for
// the hot swap). moduleDir is the repository root.
func BuildWasm(moduleDir, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, b := range []struct{ out, pkg, ldflags string }{
		{"mix.wasm", "./plugins/mix", ""},
		{"l0.wasm", "./plugins/l0", ""},
		{"mix@1.1.0.wasm", "./cmd/compact-host/testdata/mixnext", "-X main.version=1.1.0"},
	} {
		args := []string{"build", "-buildmode=c-shared", "-o", filepath.Join(dir, b.out)}
		if b.ldflags != "" {
			args = append(args, "-ldflags", b.ldflags)
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, msg)
		}
	}
	return nil
}

// Report is a whole harness run.
type Report struct {
	Started  time.Time
	Seconds  float64
	Machine  string
	Size     int64
	Suites   []string
	Results  []*Result
	Scaling  *Scaling `json:",omitempty"`
	Failures []string `json:",omitempty"`
}

// Scaling is the least-squares exponent k of time ~ size^k.
type Scaling struct {
	Sizes    []float64
	Seconds  []float64
	Exponent float64
}

// FitExponent fits log(seconds) = k log(size) + c.
func FitExponent(sizes, secs []float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(sizes))
	for i := range sizes {
		x, y := math.Log(sizes[i]), math.Log(secs[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// Machine describes this machine in one line.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = " load " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	var mem int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &mem)
	}
	return fmt.Sprintf("%s, %d cores, %.0f GiB,%s", model, runtime.NumCPU(), float64(mem)/(1<<20), load)
}
