package mempool

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const gib = 1 << 30

func TestSystemMemoryFixtures(t *testing.T) {
	cases := map[string]Memory{
		// /proc/meminfo only: MemAvailable 8GiB of MemTotal 16GiB.
		"none": {Available: 8 * gib, Limit: 16 * gib, Self: 100 << 20, From: "/proc/meminfo"},
		// memory.max "max" and no limit above: the machine bounds.
		"v2max": {Available: 8 * gib, Limit: 16 * gib, Self: 100 << 20, From: "/proc/meminfo"},
		// The service's own limit leaves 4GiB-1GiB = 3GiB, but its parent
		// slice leaves 6GiB-(5GiB-1GiB inactive file) = 2GiB: the tighter wins.
		"v2": {Available: 2 * gib, Limit: 4 * gib, Self: 100 << 20, From: "testdata/memory/v2/sys/fs/cgroup/system.slice"},
		// 3GiB limit, 2.5GiB usage of which 512MiB inactive file: 1GiB left.
		"v1": {Available: 1 * gib, Limit: 3 * gib, Self: 100 << 20, From: "testdata/memory/v1/sys/fs/cgroup/memory/docker/3f2a"},
	}
	for name, want := range cases {
		got, err := SystemMemory(filepath.Join("testdata", "memory", name)).Memory()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("%s: Memory() = %+v, want %+v", name, got, want)
		}
	}
}

// writeTree writes files (path -> content) under a new directory, and a
// proc/self/status with VmRSS 100MiB unless files has one.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	files = maps.Clone(files)
	if _, ok := files["proc/self/status"]; !ok {
		files["proc/self/status"] = "Name:\tcompact-host\nVmRSS:\t  102400 kB\n"
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const goodMeminfo = "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n"

func TestSystemMemoryCgroupEdgeCases(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string
		want   Memory
		reason string
	}{
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/memory.usage_in_bytes": "1\n",
		}, Memory{Available: 8 * gib, Limit: 16 * gib}, "v1's huge limit means none"},
		{"v2 path missing in a container", map[string]string{
			"proc/self/cgroup":             "0::/kubepods/burstable/pod1/abc\n",
			"sys/fs/cgroup/memory.max":     "2147483648\n",
			"sys/fs/cgroup/memory.current": "536870912\n",
		}, Memory{Available: 1536 << 20, Limit: 2 * gib}, "without a cgroup namespace the mount is the container's cgroup"},
		{"usage above limit", map[string]string{
			"proc/self/cgroup":             "0::/\n",
			"sys/fs/cgroup/memory.max":     "1000\n",
			"sys/fs/cgroup/memory.current": "2000\n",
		}, Memory{Available: 0, Limit: 1000}, "no headroom is 0, not negative"},
	}
	for _, tc := range cases {
		tc.files["proc/meminfo"] = goodMeminfo
		m, err := SystemMemory(writeTree(t, tc.files)).Memory()
		if err != nil || m.Available != tc.want.Available || m.Limit != tc.want.Limit || m.Self != 100<<20 {
			t.Errorf("%s (%s): Memory() = %+v, %v; want %+v", tc.name, tc.reason, m, err, tc.want)
		}
	}
}

func TestSystemMemoryErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string // fragment of the error; the file name is checked too
		file  string
	}{
		{"no meminfo", map[string]string{}, "no such file", "proc/meminfo"},
		{"no MemAvailable", map[string]string{"proc/meminfo": "MemTotal: 1024 kB\n"},
			"no MemAvailable line", "proc/meminfo"},
		{"garbage meminfo", map[string]string{"proc/meminfo": "MemTotal: lots kB\nMemAvailable: 1 kB\n"},
			`MemTotal: "lots" is not a size in kB`, "proc/meminfo"},
		{"meminfo unit", map[string]string{"proc/meminfo": "MemTotal: 1024 MB\nMemAvailable: 1 kB\n"},
			`is not "MemTotal: N kB"`, "proc/meminfo"},
		{"no VmRSS", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/status": "Name: compact-host\n"},
			"no VmRSS line", "proc/self/status"},
		{"garbage cgroup list", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "what\n"},
			`line "what" is not ID:CONTROLLERS:/PATH`, "proc/self/cgroup"},
		{"garbage memory.max", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n"}, `"lots" is not a byte count`, "sys/fs/cgroup/memory.max"},
		{"negative memory.max", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "-5\n"}, `"-5" is not a byte count`, "sys/fs/cgroup/memory.max"},
		{"no memory.current", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "1000\n"}, "no such file", "sys/fs/cgroup/memory.current"},
		{"garbage memory.stat", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "1000\n", "sys/fs/cgroup/memory.current": "10\n",
			"sys/fs/cgroup/memory.stat": "inactive_file x\n"}, `"x" is not a byte count`, "sys/fs/cgroup/memory.stat"},
		{"garbage v1 usage", map[string]string{"proc/meminfo": goodMeminfo, "proc/self/cgroup": "3:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "1000\n", "sys/fs/cgroup/memory/memory.usage_in_bytes": "\x00\x01"},
			"is not a byte count", "sys/fs/cgroup/memory/memory.usage_in_bytes"},
	}
	for _, tc := range cases {
		root := writeTree(t, tc.files)
		m, err := SystemMemory(root).Memory()
		if err == nil {
			t.Errorf("%s: Memory() = %+v, want an error", tc.name, m)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(root, tc.file)) {
			t.Errorf("%s: error %q, want %q naming %s", tc.name, err, tc.want, tc.file)
		}
	}
}

// TestSystemMemoryHere reads this machine: whatever it runs in, the reading
// is sane or the error names a file.
func TestSystemMemoryHere(t *testing.T) {
	m, err := SystemMemory("").Memory()
	if err != nil {
		if _, statErr := os.Stat("/proc/meminfo"); statErr != nil {
			t.Skipf("no /proc/meminfo: %v", err)
		}
		t.Fatal(err)
	}
	if m.Limit <= 0 || m.Available < 0 || m.Available > m.Limit || m.Self <= 0 || m.From == "" {
		t.Fatalf("Memory() = %+v", m)
	}
}
