package mempool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Memory is one reading of the memory available to this process.
type Memory struct {
	// Available is the bytes this process could still allocate without
	// pushing the machine or its cgroup into reclaim: the smaller of the
	// machine's MemAvailable and the cgroup's limit minus its usage.
	Available int64
	// Limit is the machine's MemTotal or the cgroup's limit, whichever is
	// smaller.
	Limit int64
	// Self is this process's resident memory (VmRSS). The pool's leases
	// count as available only up to it: a lease whose pages are not touched
	// yet is still inside Available.
	Self int64
	// From names what bounded Available: "/proc/meminfo" or a cgroup
	// directory.
	From string
}

// MemorySource reads the memory available to this process. A [Controller]
// with a [LoadPolicy] reads it on every tick; tests inject a fake one.
type MemorySource interface {
	Memory() (Memory, error)
}

// SystemMemory returns the Linux memory source: /proc/meminfo, bounded by
// the memory limits of the cgroup the process runs in (v2: memory.max and
// memory.current of its cgroup and every ancestor; v1: memory.limit_in_bytes
// and memory.usage_in_bytes). root is prepended to every path; "" means "/".
// Tests point it at fixture trees.
func SystemMemory(root string) MemorySource {
	if root == "" {
		root = "/"
	}
	return systemMemory{root: root}
}

type systemMemory struct{ root string }

func (s systemMemory) path(p string) string { return filepath.Join(s.root, p) }

// Memory implements MemorySource.
func (s systemMemory) Memory() (Memory, error) {
	m, err := s.meminfo()
	if err != nil {
		return Memory{}, err
	}
	cg, ok, err := s.cgroup(m.Limit)
	if err != nil || !ok {
		return m, err
	}
	if cg.Limit < m.Limit {
		m.Limit = cg.Limit
	}
	if cg.Available < m.Available {
		m.Available, m.From = cg.Available, cg.From
	}
	return m, nil
}

func (s systemMemory) meminfo() (Memory, error) {
	kb, err := readKB(s.path("/proc/meminfo"), "MemTotal", "MemAvailable")
	if err != nil {
		return Memory{}, err
	}
	self, err := readKB(s.path("/proc/self/status"), "VmRSS")
	if err != nil {
		return Memory{}, err
	}
	return Memory{Available: kb["MemAvailable"], Limit: kb["MemTotal"], Self: self["VmRSS"], From: "/proc/meminfo"}, nil
}

// readKB reads "Key: N kB" lines of a /proc file and returns them in bytes;
// every key is required.
func readKB(name string, keys ...string) (map[string]int64, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("mempool: memory source: %w", err)
	}
	out := make(map[string]int64, len(keys))
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		key, ok := strings.CutSuffix(f[0], ":")
		if !ok || !slices.Contains(keys, key) {
			continue
		}
		if len(f) != 3 || f[2] != "kB" {
			return nil, fmt.Errorf("mempool: memory source: %s: line %q is not \"%s N kB\"", name, sc.Text(), f[0])
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 || n > (1<<53) {
			return nil, fmt.Errorf("mempool: memory source: %s: %s %q is not a size in kB", name, f[0], f[1])
		}
		out[key] = n << 10
	}
	for _, key := range keys {
		if _, ok := out[key]; !ok {
			return nil, fmt.Errorf("mempool: memory source: %s: no %s line", name, key)
		}
	}
	return out, nil
}

// cgroup returns the tightest memory limit of the process's cgroup, and
// false when the process is in no memory cgroup or none of its cgroups has
// a limit below machineTotal.
func (s systemMemory) cgroup(machineTotal int64) (Memory, bool, error) {
	name := s.path("/proc/self/cgroup")
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Memory{}, false, nil // no cgroups (or not Linux)
	}
	if err != nil {
		return Memory{}, false, fmt.Errorf("mempool: memory source: %w", err)
	}
	var v1, v2 string
	var haveV1, haveV2 bool
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path; the path may contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return Memory{}, false, fmt.Errorf("mempool: memory source: %s: line %q is not ID:CONTROLLERS:/PATH", name, line)
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2, haveV2 = parts[2], true
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1, haveV1 = parts[2], true
		}
	}
	switch {
	case haveV1: // a v1 memory controller takes precedence over a hybrid setup's v2 tree
		return s.cgroupV1(v1, machineTotal)
	case haveV2:
		return s.cgroupV2(v2, machineTotal)
	}
	return Memory{}, false, nil
}

// cgroupDir maps the process's cgroup path to a directory under mount. In a
// container with its own cgroup namespace the path is "/" and the mount is
// the container's cgroup; without one the path may not exist under the
// container's mount, and the mount itself is the nearest cgroup we can read.
func (s systemMemory) cgroupDir(mount, cgPath string) string {
	dir := s.path(filepath.Join(mount, filepath.Clean(cgPath)))
	if _, err := os.Stat(dir); err != nil {
		return s.path(mount)
	}
	return dir
}

// cgroupV2 walks from the process's cgroup up to the mount: a limit on any
// ancestor applies too, and the tightest headroom wins.
func (s systemMemory) cgroupV2(cgPath string, machineTotal int64) (Memory, bool, error) {
	mount := s.path("/sys/fs/cgroup")
	dir := s.cgroupDir("/sys/fs/cgroup", cgPath)
	var best Memory
	found := false
	for {
		limit, ok, err := readCgroupLimit(filepath.Join(dir, "memory.max"), machineTotal)
		if err != nil {
			return Memory{}, false, err
		}
		if ok {
			used, err := cgroupUsage(dir, "memory.current", "inactive_file")
			if err != nil {
				return Memory{}, false, err
			}
			if avail := max(limit-used, 0); !found || avail < best.Available {
				best.Available, best.From = avail, dir
			}
			if !found || limit < best.Limit {
				best.Limit = limit
			}
			found = true
		}
		if dir == mount || len(dir) <= len(mount) {
			return best, found, nil
		}
		dir = filepath.Dir(dir)
	}
}

func (s systemMemory) cgroupV1(cgPath string, machineTotal int64) (Memory, bool, error) {
	dir := s.cgroupDir("/sys/fs/cgroup/memory", cgPath)
	limit, ok, err := readCgroupLimit(filepath.Join(dir, "memory.limit_in_bytes"), machineTotal)
	if err != nil || !ok {
		return Memory{}, false, err
	}
	used, err := cgroupUsage(dir, "memory.usage_in_bytes", "total_inactive_file")
	if err != nil {
		return Memory{}, false, err
	}
	return Memory{Available: max(limit-used, 0), Limit: limit, From: dir}, true, nil
}

// readCgroupLimit reads a limit file: "max" (v2), a number at or above the
// machine's total (v1's "unlimited" is a huge number) or a missing file (the
// root cgroup has none) mean no limit.
func readCgroupLimit(name string, machineTotal int64) (int64, bool, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("mempool: memory source: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "max" {
		return 0, false, nil
	}
	n, err := parseCgroupBytes(name, text)
	if err != nil {
		return 0, false, err
	}
	return n, n < machineTotal, nil
}

// cgroupUsage reads the cgroup's usage minus its inactive file cache, which
// the kernel reclaims before it hits the limit (the working set, as the
// kubelet counts it). A missing memory.stat leaves the usage as it is.
func cgroupUsage(dir, usageFile, inactiveKey string) (int64, error) {
	name := filepath.Join(dir, usageFile)
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("mempool: memory source: %w", err)
	}
	used, err := parseCgroupBytes(name, strings.TrimSpace(string(data)))
	if err != nil {
		return 0, err
	}
	statName := filepath.Join(dir, "memory.stat")
	stat, err := os.ReadFile(statName)
	if errors.Is(err, fs.ErrNotExist) {
		return used, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mempool: memory source: %w", err)
	}
	for _, line := range strings.Split(string(stat), "\n") {
		key, val, ok := strings.Cut(line, " ")
		if !ok || key != inactiveKey {
			continue
		}
		inactive, err := parseCgroupBytes(statName, strings.TrimSpace(val))
		if err != nil {
			return 0, err
		}
		return max(used-inactive, 0), nil
	}
	return used, nil
}

func parseCgroupBytes(name, text string) (int64, error) {
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		if len(text) > 40 {
			text = text[:40] + "..."
		}
		return 0, fmt.Errorf("mempool: memory source: %s: %q is not a byte count", name, text)
	}
	return n, nil
}
