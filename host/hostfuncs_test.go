package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogRateLimited(t *testing.T) {
	var out syncBuffer
	rt := newTestRuntime(t, Config{Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Trace})})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{batchBody: tmLogFloodBody}))
	if _, err := runTask(context.Background(), rt, p, InstanceConfig{Grant: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(out.String(), "host.mix@1.0.0: boom")
	if lines < logBurst || lines > logBurst+10 {
		t.Fatalf("%d of 1000 guest log lines reached the log, want about %d", lines, logBurst)
	}
}

func TestProbe(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "mix@1.0.0", tmModule(tmOpts{batchBody: tmProbeBody}))
	var seen []uint32
	cfg := InstanceConfig{Grant: 1 << 20, Probe: func(pairs, hits []byte) error {
		for i := 0; i+4 <= len(pairs); i += 4 {
			seen = append(seen, binary.LittleEndian.Uint32(pairs[i:]))
		}
		if len(hits) != 1 {
			return errors.New("want a 1-byte bitmap for 2 pairs")
		}
		hits[0] = 0b10
		return nil
	}}
	fill := func(dst []byte) error {
		for i := range 4 {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(i+7))
		}
		return nil
	}
	inst, err := rt.NewInstance(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if err := inst.Batch(context.Background(), 16, fill); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 || seen[0] != 7 || seen[3] != 10 {
		t.Fatalf("probe saw %v", seen)
	}

	// Without a Probe handler the guest gets UNSUPPORTED (returned here as
	// its own status); an out-of-range hits pointer is ABI misuse.
	cfg.Probe = nil
	inst2, err := rt.NewInstance(context.Background(), p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inst2.Close()
	if err := inst2.Batch(context.Background(), 16, fill); !errors.Is(err, ErrGuestFailed) || !strings.Contains(err.Error(), "UNSUPPORTED") {
		t.Fatalf("no handler: %v", err)
	}
	bad := admit(t, rt, "mix@1.0.1", tmModule(tmOpts{version: "1.0.1", batchBody: tmProbeBadOutBody}))
	inst3, err := rt.NewInstance(context.Background(), bad, InstanceConfig{Grant: 1 << 20, Probe: cfg.Probe})
	if err != nil {
		t.Fatal(err)
	}
	defer inst3.Close()
	if err := inst3.Batch(context.Background(), 16, fill); !errors.Is(err, ErrABIMisuse) || !strings.Contains(err.Error(), "probe output: buffer [4294967295, +1)") {
		t.Fatalf("bad out pointer: %v", err)
	}
}

func TestGuestOutputCapped(t *testing.T) {
	rt := newTestRuntime(t, Config{OutputLimit: 100, MaxGrant: 256 << 20})
	p := admit(t, rt, "guest@1.0.0", goGuest(t))
	_, err := runGuest(context.Background(), rt, p, "rawpanic", 64<<20, 8, nil)
	var te *TaskError
	if !errors.As(err, &te) || len(te.Stderr) != 100 || !strings.HasPrefix(te.Stderr, "panic: assignment to entry in nil map") {
		t.Fatalf("stderr %q (%v)", te.Stderr, err)
	}
}

func TestCompilationCacheDirPersists(t *testing.T) {
	dir := t.TempDir()
	rt := newTestRuntime(t, Config{CacheDir: dir})
	admit(t, rt, "mix@1.0.0", tmModule(tmOpts{tag: "cache-test"}))
	if files, _ := filepath.Glob(filepath.Join(dir, "wazero-*", "*")); len(files) == 0 {
		t.Fatalf("no compiled code under %s", dir)
	}
}
