package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Interval between polls in Watch (default 2s).
	Interval time.Duration
	// ProbeGrant is the memory grant of the trial instance each new binary
	// must start in (run _initialize, read and check the manifest) before it
	// may serve (default 64 MiB, at least the module's minimum, at most the
	// runtime's MaxGrant).
	ProbeGrant uint64
	// Logger receives load, refusal and rollback events (default: the
	// runtime's logger).
	Logger hclog.Logger
}

// PluginStatus describes one binary known to a Registry.
type PluginStatus struct {
	File   string   // name@version.wasm
	ID     PluginID // SHA256 empty if the binary could not be read or was oversized
	Active bool     // serves new tasks for its name
	// Err is why the binary is not serving (admission refusal, read error).
	// If a file that was serving is replaced by a refused binary, the
	// previously admitted bytes keep serving and Err reports the refusal.
	Err error
}

// Registry keeps the admitted plugins of a Source and hot-reloads them.
// For each strategy name the highest admitted version is active: new tasks
// get it from Acquire, tasks already running keep the Plugin they acquired
// (plugins are reference counted). A binary that fails admission is
// refused and listed with its error while older versions keep serving;
// removing a version's file rolls back to the next highest.
type Registry struct {
	rt  *Runtime
	src Source
	cfg RegistryConfig
	log hclog.Logger

	pollMu  sync.Mutex // one Poll at a time
	mu      sync.Mutex // guards entries
	entries map[string]*regEntry
	closed  bool
}

type regEntry struct {
	file    string
	id      PluginID
	size    int64
	modTime time.Time
	plugin  *Plugin // admitted plugin serving for this file, or nil
	err     error   // last refusal
}

// NewRegistry returns an empty registry; call Poll or Watch to load.
func NewRegistry(rt *Runtime, src Source, cfg RegistryConfig) *Registry {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.ProbeGrant == 0 {
		cfg.ProbeGrant = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = rt.log
	}
	return &Registry{rt: rt, src: src, cfg: cfg, log: cfg.Logger.Named("registry"), entries: map[string]*regEntry{}}
}

// Watch polls the source every Interval until ctx is done. Listing errors
// are logged and retried at the next tick.
func (r *Registry) Watch(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if err := r.Poll(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("plugin poll failed", "source", r.src.String(), "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll lists the source once and applies changes: new or changed binaries
// (size, mtime, then sha256) are admitted or refused, removed ones are
// dropped. It returns an error only if the source cannot be listed;
// per-binary failures are recorded in Plugins and logged.
func (r *Registry) Poll(ctx context.Context) error {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	listed, err := r.src.List(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(listed))
	for _, se := range listed {
		seen[se.Name] = true
		r.mu.Lock()
		old := r.entries[se.Name]
		r.mu.Unlock()
		if old != nil && old.size == se.Size && old.modTime.Equal(se.ModTime) {
			continue
		}
		r.load(ctx, se, old)
	}
	r.mu.Lock()
	var gone []*regEntry
	for name, e := range r.entries {
		if !seen[name] {
			gone = append(gone, e)
			delete(r.entries, name)
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		if e.plugin != nil {
			r.log.Info("plugin removed", "plugin", e.id.String(), "file", e.file)
			e.plugin.Release()
		}
	}
	return nil
}

// load reads, admits and probes one new or changed binary.
func (r *Registry) load(ctx context.Context, se SourceEntry, old *regEntry) {
	ref := strings.TrimSuffix(se.Name, PluginExt)
	next := &regEntry{file: se.Name, size: se.Size, modTime: se.ModTime}
	name, version, err := ParseRef(ref)
	next.id = PluginID{Name: name, Version: version}
	var wasm []byte
	switch {
	case err != nil:
	case se.Size > r.rt.cfg.MaxModuleBytes:
		err = &AdmissionError{Plugin: next.id, Rule: "size-limit", Detail: fmt.Sprintf("binary is %d bytes, limit %d", se.Size, r.rt.cfg.MaxModuleBytes)}
	default:
		wasm, err = r.src.Read(ctx, se.Name, r.rt.cfg.MaxModuleBytes+1)
	}
	if err == nil {
		sum := sha256.Sum256(wasm)
		next.id.SHA256 = hex.EncodeToString(sum[:])
		if old != nil && old.id.SHA256 == next.id.SHA256 {
			// Touched but unchanged: keep serving as is.
			r.mu.Lock()
			old.size, old.modTime = se.Size, se.ModTime
			r.mu.Unlock()
			return
		}
		next.plugin, err = r.admit(ctx, ref, wasm)
	}
	if err != nil && ctx.Err() != nil {
		return // interrupted: decide nothing, the next poll retries
	}
	if err != nil {
		next.err = err
		var ae *AdmissionError
		if !errors.As(err, &ae) && !errors.As(err, new(*TaskError)) && next.id.Name != "" {
			// A read error is not a verdict on the binary: forget size and
			// mtime so the next poll reads it again.
			next.size = -1
		}
		if old != nil && old.plugin != nil {
			// Keep the previously admitted bytes of this file serving.
			next.plugin, next.id = old.plugin, old.id
			r.log.Error("plugin update refused, previous binary keeps serving", "file", se.Name, "serving", old.id.String(), "error", err)
		} else {
			r.log.Error("plugin refused", "file", se.Name, "error", err)
		}
	} else {
		r.log.Info("plugin loaded", "plugin", next.id.String(), "file", se.Name)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		if next.plugin != nil && (old == nil || next.plugin != old.plugin) {
			next.plugin.Release()
		}
		return
	}
	r.entries[se.Name] = next
	r.mu.Unlock()
	if old != nil && old.plugin != nil && old.plugin != next.plugin {
		old.plugin.Release() // running instances keep their own references
	}
}

// admit runs admission and a trial instance (_initialize + manifest).
func (r *Registry) admit(ctx context.Context, ref string, wasm []byte) (*Plugin, error) {
	p, err := r.rt.Admit(ctx, ref, wasm)
	if err != nil {
		return nil, err
	}
	grant := min(max(r.cfg.ProbeGrant, p.MinMemory()), r.rt.cfg.MaxGrant)
	inst, err := r.rt.NewInstance(ctx, p, InstanceConfig{Grant: grant, Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		p.Release()
		return nil, err
	}
	inst.Close()
	return p, nil
}

// ErrNoPlugin is returned by Acquire when no admitted version of the name
// is available.
var ErrNoPlugin = errors.New("no admitted plugin")

// Acquire returns the active (highest admitted) version of the named
// strategy with a reference held for the caller, who must Release it when
// the task ends.
func (r *Registry) Acquire(name string) (*Plugin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *regEntry
	for _, e := range r.entries {
		if e.plugin == nil || e.id.Name != name {
			continue
		}
		if best == nil || compareVersions(e.plugin.id.Version, best.plugin.id.Version) > 0 {
			best = e
		}
	}
	if best == nil || !best.plugin.Retain() {
		return nil, fmt.Errorf("host: plugin %q in %s: %w", name, r.src, ErrNoPlugin)
	}
	return best.plugin, nil
}

// Plugins lists every binary the registry knows, sorted by file name.
func (r *Registry) Plugins() []PluginStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	active := map[string]*regEntry{}
	for _, e := range r.entries {
		if e.plugin == nil {
			continue
		}
		if a := active[e.id.Name]; a == nil || compareVersions(e.plugin.id.Version, a.plugin.id.Version) > 0 {
			active[e.id.Name] = e
		}
	}
	out := make([]PluginStatus, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, PluginStatus{File: e.file, ID: e.id, Active: active[e.id.Name] == e, Err: e.err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Close releases the registry's references; plugins still in use by
// running instances stay alive until those finish.
func (r *Registry) Close() {
	r.mu.Lock()
	entries := r.entries
	r.entries, r.closed = map[string]*regEntry{}, true
	r.mu.Unlock()
	for _, e := range entries {
		if e.plugin != nil {
			e.plugin.Release()
		}
	}
}

// compareVersions orders versions by dot-separated parts (an optional
// leading "v" ignored), numerically where both parts are numbers, else as
// strings; a version that is a prefix of another is smaller.
func compareVersions(a, b string) int {
	pa := strings.Split(strings.TrimPrefix(a, "v"), ".")
	pb := strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.ParseUint(pa[i], 10, 64)
		nb, eb := strconv.ParseUint(pb[i], 10, 64)
		switch {
		case ea == nil && eb == nil && na != nb:
			if na < nb {
				return -1
			}
			return 1
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i])
		}
	}
	return len(pa) - len(pb)
}
