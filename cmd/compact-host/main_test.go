package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cliBinary is the compact-host executable built once for the tests: they run the real binary, as
// a user or a script would. mixWasm and l0Wasm are the bundled strategies built for wasip1.
var cliBinary, mixWasm, l0Wasm string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "compact-host-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliBinary = filepath.Join(dir, "compact-host")
	mixWasm, l0Wasm = filepath.Join(dir, "mix.wasm"), filepath.Join(dir, "l0.wasm")
	for _, b := range []struct {
		out, pkg string
		env      []string
	}{
		{cliBinary, ".", nil},
		{mixWasm, "../../plugins/mix", []string{"GOOS=wasip1", "GOARCH=wasm"}},
		{l0Wasm, "../../plugins/l0", []string{"GOOS=wasip1", "GOARCH=wasm"}},
	} {
		args := []string{"build", "-o", b.out}
		if b.env != nil {
			args = append(args, "-buildmode=c-shared")
		}
		build := exec.Command("go", append(args, b.pkg)...)
		build.Env = append(os.Environ(), b.env...)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", b.pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

func TestGenThenInspect(t *testing.T) {
	dir := t.TempDir()
	store, plans := filepath.Join(dir, "data"), filepath.Join(dir, "plans")
	r := runCLI(t, "gen", "--storage", store, "--plans", plans, "--segments", "2", "--rows", "500", "--dim", "4", "--json")
	if r.code != 0 {
		t.Fatalf("gen exit %d: %s", r.code, r.stderr)
	}
	var sum struct {
		Rows, Deleted, Expired, Kept int64
		Plans                        map[string]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("gen --json output is not JSON: %v\n%s", err, r.stdout)
	}
	if sum.Rows != 1000 || sum.Deleted+sum.Expired+sum.Kept != 1000 || sum.Deleted == 0 {
		t.Fatalf("gen summary %+v", sum)
	}
	for _, name := range []string{"mix-plan.json", "l0-plan.json"} {
		if _, err := os.Stat(filepath.Join(plans, name)); err != nil {
			t.Fatalf("gen did not write %s: %v", name, err)
		}
	}

	// Inspect one object of each kind, by local file path and by key.
	var insert, delta, stats string
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case strings.Contains(p, "/insert_log/") && strings.Contains(p, "/101/") && insert == "":
			insert = p
		case strings.Contains(p, "/delta_log/") && delta == "":
			delta = p
		case strings.Contains(p, "/stats_log/") && stats == "":
			stats = p
		}
		return nil
	})
	r = runCLI(t, "inspect", insert, "--rows", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "kind: insert_binlog") || !strings.Contains(r.stdout, "(dim 4)") {
		t.Fatalf("inspect insert binlog: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	key, _ := filepath.Rel(store, delta)
	r = runCLI(t, "inspect", "--storage", store, filepath.ToSlash(key), "--json")
	var ins struct {
		Kind       string
		NumRows    int64  `json:"num_rows"`
		Format     string `json:"deltalog_format"`
		Descriptor struct {
			FieldID     int64  `json:"field_id"`
			PayloadType string `json:"payload_type"`
		}
		Events []struct{ Type string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil || r.code != 0 {
		t.Fatalf("inspect --json deltalog: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if ins.Kind != "deltalog" || ins.Format != "json" || ins.NumRows == 0 || ins.Descriptor.FieldID != -1 ||
		ins.Descriptor.PayloadType != "String" || len(ins.Events) != 1 || ins.Events[0].Type != "DeleteEvent" {
		t.Fatalf("inspect deltalog: %+v", ins)
	}
	r = runCLI(t, "inspect", stats)
	if r.code != 0 || !strings.Contains(r.stdout, "BlockedBloomFilter") {
		t.Fatalf("inspect stats log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte{0xBC, 0xFA, 0xFF, 0x00, 1, 2, 3}, 0o644)
	badParquet := filepath.Join(dir, "bad-parquet")
	os.WriteFile(badParquet, []byte("PAR1 not a column-group file"), 0o644)
	cases := []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"gen", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"gen", "--storage", dir, "--pk", "float"}, exitUsage, "--pk must be int64 or varchar"},
		{[]string{"gen", "--storage", dir, "--segments", "0"}, exitUsage, "segments must be >= 1"},
		{[]string{"gen", "--storage", dir, "--storage-version", "3"}, exitUsage, "storage version must be 0, 1 (v1) or 2 (v2), got 3"},
		{[]string{"gen", "--storage", dir, "--mixed-versions"}, exitUsage, "mixed versions need storage version 2"},
		{[]string{"inspect"}, exitUsage, "exactly one key or file"},
		{[]string{"inspect", "--storage", dir, "files/missing"}, exitNotFound, `"files/missing"`},
		{[]string{"inspect", junk}, exitBadInput, junk},
		{[]string{"inspect", badParquet}, exitBadInput, `not the Parquet magic PAR1`},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		r := runCLI(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.message) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.message)
		}
		if strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("%v: want one line on stderr, got %q", c.args, r.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "compact-host ") || !strings.Contains(r.stdout, "wazero") && !strings.Contains(r.stdout, "arrow-go") {
		t.Fatalf("version: exit %d\n%s", r.code, r.stdout)
	}
}
