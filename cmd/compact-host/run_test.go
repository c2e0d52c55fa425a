package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genDemo writes a small collection and its plans, returning the store and plan directories and
// gen's summary.
func genDemo(t *testing.T, extra ...string) (store, plans string, sum genSummary) {
	t.Helper()
	dir := t.TempDir()
	store, plans = filepath.Join(dir, "data"), filepath.Join(dir, "plans")
	args := append([]string{"gen", "--storage", store, "--plans", plans, "--segments", "3", "--rows", "800", "--dim", "8", "--json"}, extra...)
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("gen: exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	return store, plans, sum
}

type genSummary struct{ Rows, Deleted, Expired, Kept int64 }

type planResult struct {
	State    string
	Segments []struct {
		SegmentID      string
		NumOfRows      string
		StorageVersion string
		InsertLogs     []struct {
			FieldID     string
			ChildFields []string
		}
		Deltalogs []struct {
			Binlogs []struct{ EntriesNum string }
		}
	}
}

// TestRunMixAndL0Plans runs gen's mix and L0 plans through the real binary
// on storage v1, v2 and mixed collections: the outputs hold what gen
// promises, in the version the plan asks for or --storage-version forces.
func TestRunMixAndL0Plans(t *testing.T) {
	for _, c := range []struct {
		name     string
		gen, run []string
		version  string // the outputs' storageVersion in protojson ("" is 0)
		groups   int    // insert logs per output: fields (v1) or column groups (v2)
	}{
		{"v1", nil, nil, "", 9},
		{"v2", []string{"--storage-version", "2"}, nil, "2", 3},
		{"mixed into v2", []string{"--storage-version", "2", "--mixed-versions"}, []string{"--storage-version", "v2"}, "2", 3},
		{"v2 into v1", []string{"--storage-version", "2"}, []string{"--storage-version", "v1"}, "", 9},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, plans, sum := genDemo(t, c.gen...)
			args := append([]string{"--plugin", mixWasm, "--plan", filepath.Join(plans, "mix-plan.json"), "--storage", store, "--progress", "log"}, c.run...)
			r := runCLI(t, args...)
			if r.code != 0 {
				t.Fatalf("mix run: exit %d\n%s", r.code, r.stderr)
			}
			var res planResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, r.stdout)
			}
			var kept int64
			for _, s := range res.Segments {
				var n int64
				json.Unmarshal([]byte(s.NumOfRows), &n)
				kept += n
				if s.StorageVersion != c.version || len(s.InsertLogs) != c.groups {
					t.Fatalf("output %s: storageVersion %q with %d insert logs, want %q with %d", s.SegmentID, s.StorageVersion, len(s.InsertLogs), c.version, c.groups)
				}
			}
			if res.State != "completed" || kept != sum.Kept {
				t.Fatalf("mix result: state %s, %d rows kept, gen expects %d", res.State, kept, sum.Kept)
			}
			want := fmt.Sprintf("3 segment(s) in, 1 out; %d rows read, %d kept, %d deleted, %d expired", sum.Rows, sum.Kept, sum.Deleted, sum.Expired)
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("no summary %q on stderr:\n%s", want, r.stderr)
			}

			r = runCLI(t, "--plugin", l0Wasm, "--plan", filepath.Join(plans, "l0-plan.json"), "--storage", store, "--progress", "none")
			if r.code != 0 {
				t.Fatalf("l0 run: exit %d\n%s", r.code, r.stderr)
			}
			res = planResult{}
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.State != "completed" || len(res.Segments) != 3 {
				t.Fatalf("l0 result: %v %+v", err, res)
			}
			for _, s := range res.Segments {
				if len(s.Deltalogs) != 1 || len(s.Deltalogs[0].Binlogs) != 1 {
					t.Fatalf("l0 target %s: want one new deltalog, got %+v", s.SegmentID, s.Deltalogs)
				}
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	store, plans, _ := genDemo(t)
	dir := t.TempDir()
	junkPlan := filepath.Join(dir, "plan.json")
	os.WriteFile(junkPlan, []byte(`{"planID": "x"`), 0o644)
	junkWasm := filepath.Join(dir, "bad.wasm")
	os.WriteFile(junkWasm, []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01"), 0o644)
	emptyPlan := filepath.Join(dir, "empty.json")
	os.WriteFile(emptyPlan, []byte(`{"planID": "7", "type": "MixCompaction"}`), 0o644)
	mixPlan := filepath.Join(plans, "mix-plan.json")
	manifestPlan := filepath.Join(dir, "manifest.json")
	os.WriteFile(manifestPlan, []byte(`{"planID": "8", "segmentBinlogs": [{"segmentID": "1", "manifestPath": "files/m/1"}]}`), 0o644)
	cases := []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"--plugin", mixWasm}, exitUsage, "give --plugin and --plan"},
		{[]string{"--plugin", mixWasm, "--plan", filepath.Join(dir, "nope.json")}, exitNotFound, "nope.json"},
		{[]string{"--plugin", mixWasm, "--plan", junkPlan}, exitBadInput, "plan.json"},
		{[]string{"--plugin", filepath.Join(dir, "nope.wasm"), "--plan", mixPlan}, exitNotFound, "nope.wasm"},
		{[]string{"--plugin", junkWasm, "--plan", mixPlan, "--storage", store}, exitPlugin, "refused"},
		{[]string{"--plugin", mixWasm, "--plan", emptyPlan, "--storage", store}, exitBadInput, "plan 7"},
		{[]string{"--plugin", mixWasm, "--plan", mixPlan, "--storage", store, "--policy", "static:2"}, exitUsage, "--policy"},
		{[]string{"--plugin", mixWasm, "--plan", mixPlan, "--storage", store, "--storage-version", "v3"}, exitUsage, "want plan, v1 or v2"},
		{[]string{"--plugin", mixWasm, "--plan", manifestPlan, "--storage", store}, exitBadInput, "plan.segmentBinlogs[0].manifestPath is set"},
		{[]string{"--plugin", mixWasm, "--plan", mixPlan, "--storage", filepath.Join(dir, "empty-store")}, exitNotFound, "does not exist"},
		{[]string{"--plugin", mixWasm, "--plan", mixPlan, "--storage", "s3://bucket/files", "--endpoint", "127.0.0.1:1", "--insecure"}, exitStorage, "127.0.0.1:1"},
	}
	for _, c := range cases {
		r := runCLI(t, c.args...)
		if r.code != c.code || !strings.Contains(lastLine(r.stderr), c.message) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.message)
		}
		if strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("%v: stack trace on stderr without --debug:\n%s", c.args, r.stderr)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestPluginValidateAndList(t *testing.T) {
	r := runCLI(t, "plugin", "validate", mixWasm, "--json")
	var rep pluginReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("plugin validate: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if rep.Name != "mix" || rep.Version == "" || len(rep.SHA256) != 64 || rep.Manifest.Handles[0] != "mix" {
		t.Fatalf("plugin validate report: %+v", rep)
	}
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	os.WriteFile(bad, []byte("not wasm"), 0o644)
	if r := runCLI(t, "plugin", "validate", bad); r.code != exitPlugin || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("validate of a non-module: exit %d %q", r.code, r.stderr)
	}

	dir := t.TempDir()
	copyFile(t, mixWasm, filepath.Join(dir, "mix@1.0.0.wasm"))
	copyFile(t, l0Wasm, filepath.Join(dir, "mix@2.0.0.wasm")) // an l0 module filed under mix: refused
	r = runCLI(t, "plugin", "list", "--plugins", dir)
	if r.code != 0 {
		t.Fatalf("plugin list: exit %d %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "mix@1.0.0.wasm  active") || !strings.Contains(lines[2], `refused: `) {
		t.Fatalf("plugin list:\n%s", r.stdout)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
