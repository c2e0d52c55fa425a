package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCLIEnv runs the binary with extra environment variables; COMPACT_HOST_STORAGE is cleared
// (tests name their storage).
func runCLIEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(cliBinary, args...)
	cmd.Env = append(append(os.Environ(), "COMPACT_HOST_STORAGE="), env...)
	var r result
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

// firstKey returns the first file under dir/files whose path contains part.
func firstKey(t *testing.T, dir, part string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && found == "" && strings.Contains(filepath.ToSlash(p), part) {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no object matching %q under %s", part, dir)
	}
	return found
}

// TestExitCodesCorruptInput: an insert binlog, deltalog or stats log that does not decode exits 4
// (bad input), not 5 (storage), names the object, and is one line on stderr without --debug.
func TestExitCodesCorruptInput(t *testing.T) {
	for _, c := range []struct{ dir, plugin, plan string }{
		{"/insert_log/", mixWasm, "mix-plan.json"},
		{"/delta_log/", mixWasm, "mix-plan.json"},
		{"/stats_log/", l0Wasm, "l0-plan.json"},
	} {
		store, plans, _ := genDemo(t)
		obj := firstKey(t, store, c.dir)
		b, err := os.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		for i := 60; i < len(b); i += 7 {
			b[i] ^= 0xFF
		}
		os.WriteFile(obj, b, 0o644)
		key, _ := filepath.Rel(store, obj)
		args := []string{"--plugin", c.plugin, "--plan", filepath.Join(plans, c.plan), "--storage", store, "--progress", "none"}
		r := runCLI(t, args...)
		if r.code != exitBadInput || !strings.Contains(r.stderr, filepath.ToSlash(key)) {
			t.Errorf("corrupt %s: exit %d, stderr %q; want exit %d naming %s", c.dir, r.code, r.stderr, exitBadInput, key)
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
			t.Errorf("corrupt %s: want one line on stderr without --debug, got %d:\n%s", c.dir, n+1, r.stderr)
		}
		r = runCLI(t, append(args, "--debug")...)
		if r.code != exitBadInput || !strings.Contains(r.stderr, "compaction failed") {
			t.Errorf("corrupt %s with --debug: exit %d, want %d and the host's failure log:\n%s", c.dir, r.code, exitBadInput, r.stderr)
		}
	}
}

// TestExitCodesDeadline: a --timeout that passes exits 7 whichever step notices it (starting the
// runtime, admitting the plugin, a compaction stage), and the message says the timeout was
// exceeded instead of printing a future deadline as passed.
func TestExitCodesDeadline(t *testing.T) {
	store, plans, _ := genDemo(t, "--rows", "20000", "--dim", "64")
	cache := t.TempDir()
	plan := filepath.Join(plans, "mix-plan.json")
	// Warm the compilation cache so short timeouts reach the compaction's stages.
	if r := runCLI(t, "--plugin", mixWasm, "--plan", plan, "--storage", t.TempDir(), "--cache-dir", cache); r.code != exitNotFound {
		t.Fatalf("warming the cache: exit %d %s", r.code, r.stderr)
	}
	seen := map[string]bool{}
	inputs := storeFiles(t, store)
	for _, timeout := range []string{"1ms", "20ms", "150ms", "300ms", "600ms", "1s"} {
		r := runCLI(t, "--plugin", mixWasm, "--plan", plan, "--storage", store, "--cache-dir", cache, "--progress", "none", "--timeout", timeout)
		if r.code == exitOK {
			// Outputs are never overwritten: remove them so the next run can write its own.
			for p := range storeFiles(t, store) {
				if _, ok := inputs[p]; !ok {
					os.Remove(p)
				}
			}
			continue
		}
		line := lastLine(r.stderr)
		if r.code != exitCompaction || !strings.Contains(line, "task timeout "+timeout+" exceeded") {
			t.Errorf("--timeout %s: exit %d, stderr %q; want exit %d and %q", timeout, r.code, r.stderr, exitCompaction, "task timeout "+timeout+" exceeded")
		}
		for _, m := range passedDeadline.FindAllStringSubmatch(line, -1) {
			if d, err := time.Parse(time.RFC3339Nano, m[1]); err != nil || d.After(time.Now()) {
				t.Errorf("--timeout %s: %q calls a future deadline passed", timeout, line)
			}
		}
		for _, stage := range []string{"while opening the store", "while starting the wasm runtime", "while admitting the plugin", "noticed in stage read", "noticed in stage write", "noticed in stage strategy"} {
			if strings.Contains(line, stage) {
				seen[stage] = true
			}
		}
	}
	if len(seen) < 2 {
		t.Fatalf("timeouts hit only %v; want at least two different steps", seen)
	}
}

// TestExitCodesEnvTwins: a malformed environment variable is a usage error (exit 2) naming the
// variable, as the same value given to its flag is.
func TestExitCodesEnvTwins(t *testing.T) {
	store, plans, _ := genDemo(t)
	plan := filepath.Join(plans, "mix-plan.json")
	for _, env := range []string{
		"COMPACT_HOST_MEMORY=garbage", "COMPACT_HOST_TIMEOUT=bogus", "COMPACT_HOST_DEBUG=maybe",
		"COMPACT_HOST_LOG_JSON=perhaps", "COMPACT_HOST_S3_INSECURE=sure",
	} {
		r := runCLIEnv(t, []string{env}, "--plugin", mixWasm, "--plan", plan, "--storage", store, "--progress", "none")
		name, _, _ := strings.Cut(env, "=")
		if r.code != exitUsage || !strings.Contains(r.stderr, "$"+name) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d naming $%s", env, r.code, r.stderr, exitUsage, name)
		}
	}
	if r := runCLIEnv(t, []string{"COMPACT_HOST_PROGRESS=fancy"}, "--plugin", mixWasm, "--plan", plan, "--storage", store); r.code != exitUsage {
		t.Errorf("COMPACT_HOST_PROGRESS=fancy: exit %d, stderr %q; want %d", r.code, r.stderr, exitUsage)
	}
	if r := runCLIEnv(t, []string{"COMPACT_HOST_S3_INSECURE=sure"}, "gen", "--storage", t.TempDir(), "--plans", t.TempDir()); r.code != exitUsage {
		t.Errorf("gen with COMPACT_HOST_S3_INSECURE=sure: exit %d, stderr %q; want %d", r.code, r.stderr, exitUsage)
	}
	// A well-formed variable still works.
	if r := runCLIEnv(t, []string{"COMPACT_HOST_MEMORY=1GiB", "COMPACT_HOST_PLAN=" + plan}, "--plugin", mixWasm, "--storage", store, "--progress", "none"); r.code != exitOK {
		t.Errorf("COMPACT_HOST_MEMORY=1GiB with COMPACT_HOST_PLAN: exit %d %s", r.code, r.stderr)
	}
}

// passedDeadline finds "deadline <RFC 3339 time> passed" in a message.
var passedDeadline = regexp.MustCompile(`deadline (\S+) passed`)

// TestExitCodesMisfiledBinlog: a binlog whose descriptor names another segment (here segment A's
// binlog copied over segment B's key) is corrupt input: exit 4, naming the object.
func TestExitCodesMisfiledBinlog(t *testing.T) {
	store, plans, _ := genDemo(t)
	a := firstKey(t, store, "/insert_log/")
	seg := filepath.Dir(filepath.Dir(a))
	var b string
	filepath.WalkDir(filepath.Dir(seg), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && b == "" && !strings.HasPrefix(p, seg+string(filepath.Separator)) &&
			filepath.Base(filepath.Dir(p)) == filepath.Base(filepath.Dir(a)) {
			b = p
		}
		return nil
	})
	if b == "" {
		t.Fatalf("no second segment's binlog of field %s next to %s", filepath.Base(filepath.Dir(a)), a)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, data, 0o644); err != nil {
		t.Fatal(err)
	}
	key, _ := filepath.Rel(store, b)
	r := runCLI(t, "--plugin", mixWasm, "--plan", filepath.Join(plans, "mix-plan.json"), "--storage", store, "--progress", "none")
	if r.code != exitBadInput || !strings.Contains(r.stderr, filepath.ToSlash(key)) || !strings.Contains(r.stderr, "descriptor says segment") {
		t.Fatalf("misfiled binlog: exit %d, stderr %q; want exit %d naming %s and the descriptor's segment", r.code, r.stderr, exitBadInput, key)
	}
}

// TestExitCodesOutputExists: running a plan whose outputs already exist (a rerun) exits 4 naming
// the taken key, and every object of the first run is left as it was.
func TestExitCodesOutputExists(t *testing.T) {
	store, plans, _ := genDemo(t)
	args := []string{"--plugin", mixWasm, "--plan", filepath.Join(plans, "mix-plan.json"), "--storage", store, "--progress", "none"}
	if r := runCLI(t, args...); r.code != exitOK {
		t.Fatalf("first run: exit %d: %s", r.code, r.stderr)
	}
	before := storeFiles(t, store)
	r := runCLI(t, args...)
	if r.code != exitBadInput || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, `objstore create "files/`) {
		t.Fatalf("rerun: exit %d, stderr %q; want exit %d and the taken key", r.code, r.stderr, exitBadInput)
	}
	after := storeFiles(t, store)
	if len(after) != len(before) {
		t.Fatalf("rerun changed the object count: %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Fatalf("rerun changed %s", k)
		}
	}
}
