package host

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/compacthost/compacthost/abi"
)

var (
	builtMu  sync.Mutex
	built    = map[string][]byte{}
	guestDir string // temp dir of built modules, removed by TestMain
)

// goGuest builds testdata/guest as a Go wasip1 reactor once per test binary.
func goGuest(t testing.TB) []byte { return buildWasm(t, "./testdata/guest") }

// buildWasm builds the Go main package at pkg (relative to this package)
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, once per test binary.
// Without a go toolchain the test is skipped, except under CI=true.
func buildWasm(t testing.TB, pkg string) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go toolchain not found; CI=true requires it to build wasm test modules")
		}
		t.Skipf("go toolchain not found: cannot build the wasm test module %s", pkg)
	}
	builtMu.Lock()
	defer builtMu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	if guestDir == "" {
		if guestDir, err = os.MkdirTemp("", "host-guest-"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(guestDir, strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_")+".wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for wasip1: %v\n%s", pkg, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = b
	return b
}

// testCacheDir is a compilation cache shared by the tests' runtimes, so the
// Go guest is compiled once per test binary.
var testCacheDir string

func TestMain(m *testing.M) {
	var err error
	if testCacheDir, err = os.MkdirTemp("", "host-cache-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(testCacheDir)
	if guestDir != "" {
		os.RemoveAll(guestDir)
	}
	os.Exit(code)
}

// runGuest runs one task of the Go guest in the given mode with a batch of
// n bytes and returns the emitted sum.
func runGuest(ctx context.Context, rt *Runtime, p *Plugin, mode string, grant uint64, n int, env map[string]string) (uint64, error) {
	var sum uint64
	e := map[string]string{"COMPACT_TEST_MODE": mode}
	for k, v := range env {
		e[k] = v
	}
	inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: grant, Env: e, Emit: func(kind abi.EmitKind, data []byte) error {
		if len(data) != 8 {
			return errors.New("want 8 bytes")
		}
		sum = binary.LittleEndian.Uint64(data)
		return nil
	}})
	if err != nil {
		return 0, err
	}
	defer inst.Close()
	if err := inst.Begin(ctx, []byte(`{"plan_id":7}`)); err != nil {
		return 0, err
	}
	if err := inst.Batch(ctx, uint32(n), func(dst []byte) error {
		for i := range dst {
			dst[i] = byte(i)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	return sum, inst.Finish(ctx)
}

func TestGoGuestHostile(t *testing.T) {
	wasm := goGuest(t)
	rt := newTestRuntime(t, Config{MaxGrant: 256 << 20})
	p := admit(t, rt, "guest@1.0.0", wasm)
	const grant = 64 << 20
	cases := []struct {
		mode    string
		timeout time.Duration
		kind    error
		msg     string
	}{
		{"spin", 300 * time.Millisecond, ErrDeadline, "deadline"},
		{"bomb", 0, ErrOutOfMemory, "grant of 67108864 bytes exhausted"},
		{"panic", 0, ErrGuestFailed, "ERROR: panic: assignment to entry in nil map"},
		{"rawpanic", 0, ErrPanic, "assignment to entry in nil map"},
		{"badptr", 0, ErrABIMisuse, "emit: buffer [4294967280, +64) is outside guest memory"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			var wg sync.WaitGroup
			var goodSum uint64
			var goodErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				goodSum, goodErr = runGuest(context.Background(), rt, p, "ok", grant, 100, nil)
			}()
			_, err := runGuest(ctx, rt, p, c.mode, grant, 64, nil)
			wg.Wait()
			if goodErr != nil || goodSum != 4950 {
				t.Fatalf("good task alongside: sum %d err %v", goodSum, goodErr)
			}
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "guest@1.0.0 (sha256 ") {
				t.Fatalf("got %v; want %v containing %q", err, c.kind, c.msg)
			}
		})
	}
}

// TestMemoryCap: the same strategy holding 40 MiB succeeds under a 96 MiB
// grant and fails cleanly with ErrOutOfMemory under 32 MiB.
func TestMemoryCap(t *testing.T) {
	wasm := goGuest(t)
	rt := newTestRuntime(t, Config{MaxGrant: 256 << 20})
	p := admit(t, rt, "guest@1.0.0", wasm)
	env := map[string]string{"COMPACT_TEST_HOLD_MB": "40"}
	if _, err := runGuest(context.Background(), rt, p, "hold", 96<<20, 8, env); err != nil {
		t.Fatalf("fits: %v", err)
	}
	_, err := runGuest(context.Background(), rt, p, "hold", 32<<20, 8, env)
	var te *TaskError
	if !errors.As(err, &te) || !errors.Is(err, ErrOutOfMemory) || te.Op != "compact_v1_begin" {
		t.Fatalf("too small: %v", err)
	}
	if !strings.Contains(te.Message, "out of memory") {
		t.Fatalf("message %q does not carry the guest's out-of-memory report", te.Message)
	}
}

func TestGoGuestConcurrent(t *testing.T) {
	wasm := goGuest(t)
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "guest@1.0.0", wasm)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sum, err := runGuest(context.Background(), rt, p, "ok", 32<<20, 256, nil); err != nil || sum != 32640 {
				errs <- errors.Join(err, errors.New("wrong sum"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestGoGuestLogAndEnv: the guest's log line reaches the host logger and
// shows the GOMEMLIMIT the host set (85% of the grant).
func TestGoGuestLogAndEnv(t *testing.T) {
	var out syncBuffer
	rt := newTestRuntime(t, Config{Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})})
	p := admit(t, rt, "guest@1.0.0", goGuest(t))
	env := map[string]string{"GOMEMLIMIT": "1"} // ignored: the host owns it
	if _, err := runGuest(context.Background(), rt, p, "ok", 64<<20, 8, env); err != nil {
		t.Fatal(err)
	}
	want := `host.guest@1.0.0: begin {"plan_id":7} GOMEMLIMIT=57042480`
	if !strings.Contains(out.String(), want) {
		t.Fatalf("log %q lacks %q", out.String(), want)
	}
}
