package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginValidateRefusesUnrunnable: validate refuses (exit 6) what admission let through but no
// task could run: a manifest field that no collection has, a min_memory above --memory or above
// the runtime's MaxGrant. A min_memory above the trial instance's small grant but within the pool
// is admitted, and the plugin then runs a plan.
func TestPluginValidateRefusesUnrunnable(t *testing.T) {
	dir := t.TempDir()
	build := func(name, ldflags string) string {
		out := filepath.Join(dir, name+".wasm")
		buildWasm(t, "./testdata/mixmanifest", out, ldflags)
		return out
	}
	refused := []struct {
		file, env, message string
	}{
		{build("field7", "-X main.fields=pk,ts,7"), "", `field selector "7" names no field any Milvus collection has`},
		{build("mem3g", "-X main.minMemory=3221225472"), "", "above the memory pool of 2147483648 bytes: no task can run it"},
		{build("mem8g", "-X main.minMemory=8589934592"), "", "exceeds the runtime's MaxGrant of 4294967296 bytes"},
		{mixWasm, "COMPACT_HOST_MEMORY=16MiB", "above the memory pool of 16777216 bytes"},
	}
	for _, c := range refused {
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		r := runCLIEnv(t, env, "plugin", "validate", c.file)
		if r.code != exitPlugin || !strings.Contains(r.stderr, c.message) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("validate %s (%s): exit %d, stderr %q; want exit %d and one line with %q", filepath.Base(c.file), c.env, r.code, r.stderr, exitPlugin, c.message)
		}
	}

	mem100 := build("mem100", "-X main.minMemory=104857600")
	if r := runCLI(t, "plugin", "validate", mem100); r.code != exitOK {
		t.Fatalf("validate of a plugin asking 100 MiB: exit %d %s", r.code, r.stderr)
	}
	store, plans, _ := genDemo(t)
	if r := runCLI(t, "--plugin", mem100, "--plan", filepath.Join(plans, "mix-plan.json"), "--storage", store, "--progress", "none"); r.code != exitOK {
		t.Fatalf("run with a plugin asking 100 MiB: exit %d %s", r.code, r.stderr)
	}
}
