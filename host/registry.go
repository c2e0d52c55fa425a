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
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults for RegistryConfig's zero values.
const (
	DefaultAdmitTimeout     = 30 * time.Second
	DefaultAdmitConcurrency = 4
	DefaultRollbackFailures = 3
	DefaultRollbackWindow   = 20
)

// RuleAdmitTimeout is the AdmissionError rule of a binary whose admission
// (read, compile, trial instance) outlived RegistryConfig.AdmitTimeout.
const RuleAdmitTimeout = "admit-timeout"

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Interval between polls in Watch (default 2s).
	Interval time.Duration
	// ProbeGrant is the memory grant of the trial instance each new binary
	// must start in (run _initialize, read and check the manifest) before it
	// may serve (default 64 MiB, at least the module's minimum, at most the
	// runtime's MaxGrant).
	ProbeGrant uint64
	// AdmitTimeout bounds one binary's admission (read, compile, trial
	// instance), counted from when it gets one of the AdmitConcurrency
	// slots. A binary still in its trial instance at the deadline is refused
	// with rule RuleAdmitTimeout (default DefaultAdmitTimeout).
	AdmitTimeout time.Duration
	// AdmitConcurrency is how many binaries are admitted at once, each in
	// its own goroutine, so one stuck in _initialize delays no other
	// (default DefaultAdmitConcurrency).
	AdmitConcurrency int
	// RollbackFailures and RollbackWindow are the rollback rule: a version
	// whose tasks fail RollbackFailures times in a row, each time by the
	// strategy's own fault (see StrategyFault), within its first
	// RollbackWindow tasks is rolled back: refused with a *RollbackError so
	// the next highest admitted version of its name serves (defaults
	// DefaultRollbackFailures and DefaultRollbackWindow; a negative
	// RollbackFailures turns rollback off).
	RollbackFailures int
	RollbackWindow   int
	// MaxMemory is the most memory a task can lease: the largest size of
	// the pool the registry's plugins run under. A binary whose minimum
	// memory is above it (or above the runtime's MaxGrant) is refused at
	// admission instead of failing every task (0: only MaxGrant is checked).
	MaxMemory int64
	// Logger receives load, refusal and rollback events (default: the
	// runtime's logger).
	Logger hclog.Logger
}

// PluginStatus describes one binary known to a Registry.
type PluginStatus struct {
	File   string   // name@version.wasm
	ID     PluginID // SHA256 empty if the binary could not be read or was oversized
	Active bool     // serves new tasks for its name
	// Loading is set while the file's binary is being admitted. A new file
	// is listed with the name and version of its file name (and its sha256
	// once read); a changed file keeps its previous state meanwhile.
	Loading bool
	// Err is why the binary is not serving (admission refusal, read error,
	// *RollbackError). If a file that was serving is replaced by a refused
	// binary, the previously admitted bytes keep serving and Err reports
	// the refusal.
	Err error
}

// State names the status in one word: active, loading, refused or
// standby (admitted, not the highest version).
func (s PluginStatus) State() string {
	switch {
	case s.Active:
		return "active"
	case s.Loading:
		return "loading"
	case s.Err != nil:
		return "refused"
	}
	return "standby"
}

// Registry keeps the admitted plugins of a Source and hot-reloads them.
// For each strategy name the highest admitted version is active: new tasks
// get it from Acquire, tasks already running keep the Plugin they acquired
// (plugins are reference counted). A binary that fails admission is
// refused and listed with its error while older versions keep serving;
// removing a version's file rolls back to the next highest, and so does a
// new version that fails its first tasks (see RegistryConfig.RollbackFailures).
type Registry struct {
	rt    *Runtime
	src   Source
	cfg   RegistryConfig
	log   hclog.Logger
	slots chan struct{} // admission concurrency

	scanMu    sync.Mutex // one listing at a time
	mu        sync.Mutex // guards entries, loading, closed
	entries   map[string]*regEntry
	loading   map[string]*loadJob // admissions in flight, by file
	closed    bool
	jobs      sync.WaitGroup
	rollbacks atomic.Int64
}

type regEntry struct {
	file    string
	id      PluginID
	size    int64
	modTime time.Time
	plugin  *Plugin // admitted plugin serving for this file, or nil
	err     error   // last refusal
	trial   trial   // the plugin's first tasks, for rollback
}

// loadJob is one admission in flight.
type loadJob struct {
	id     PluginID // as far as known: from the file name, sha256 once read
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRegistry returns an empty registry; call Poll or Watch to load.
func NewRegistry(rt *Runtime, src Source, cfg RegistryConfig) *Registry {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.ProbeGrant == 0 {
		cfg.ProbeGrant = 64 << 20
	}
	if cfg.AdmitTimeout <= 0 {
		cfg.AdmitTimeout = DefaultAdmitTimeout
	}
	if cfg.AdmitConcurrency <= 0 {
		cfg.AdmitConcurrency = DefaultAdmitConcurrency
	}
	if cfg.RollbackFailures == 0 {
		cfg.RollbackFailures = DefaultRollbackFailures
	}
	if cfg.RollbackWindow <= 0 {
		cfg.RollbackWindow = DefaultRollbackWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = rt.log
	}
	return &Registry{rt: rt, src: src, cfg: cfg, log: cfg.Logger.Named("registry"),
		slots: make(chan struct{}, cfg.AdmitConcurrency), entries: map[string]*regEntry{}, loading: map[string]*loadJob{}}
}

// Watch polls the source every Interval until ctx is done, without waiting
// for the admissions it starts: a binary still loading is skipped by later
// polls until its admission ends. Listing errors are logged and retried at
// the next tick.
func (r *Registry) Watch(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.scan(ctx); err != nil && ctx.Err() == nil {
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
// (size, mtime, then sha256) are admitted or refused, each in its own
// goroutine, and removed ones are dropped. It returns once the admissions
// it started have ended (each within AdmitTimeout of getting a slot). It
// returns an error only if the source cannot be listed; per-binary
// failures are recorded in Plugins and logged.
func (r *Registry) Poll(ctx context.Context) error {
	started, err := r.scan(ctx)
	for _, j := range started {
		<-j.done
	}
	return err
}

// scan lists the source, starts an admission for every new or changed
// binary not already loading, and drops removed ones.
func (r *Registry) scan(ctx context.Context) ([]*loadJob, error) {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	listed, err := r.src.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(listed))
	var started []*loadJob
	var gone []*regEntry
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, nil
	}
	for _, se := range listed {
		seen[se.Name] = true
		if r.loading[se.Name] != nil {
			continue
		}
		if old := r.entries[se.Name]; old != nil && old.size == se.Size && old.modTime.Equal(se.ModTime) {
			continue
		}
		started = append(started, r.startLocked(ctx, se))
	}
	for name, e := range r.entries {
		if !seen[name] {
			gone = append(gone, e)
			delete(r.entries, name)
		}
	}
	for name, j := range r.loading {
		if !seen[name] {
			j.cancel() // removed while loading: the admission decides nothing
			delete(r.loading, name)
		}
	}
	r.mu.Unlock()
	for _, e := range gone {
		if e.plugin != nil {
			r.log.Info("plugin removed", "plugin", e.id.String(), "file", e.file)
			e.plugin.Release()
		}
	}
	return started, nil
}

// startLocked starts the admission of one new or changed binary.
func (r *Registry) startLocked(ctx context.Context, se SourceEntry) *loadJob {
	jctx, cancel := context.WithCancel(ctx)
	j := &loadJob{cancel: cancel, done: make(chan struct{})}
	j.id.Name, j.id.Version, _ = ParseRef(strings.TrimSuffix(se.Name, PluginExt))
	r.loading[se.Name] = j
	r.jobs.Add(1)
	go func() {
		defer r.jobs.Done()
		defer close(j.done)
		defer cancel()
		r.load(jctx, se, j)
	}()
	return j
}

// load reads, admits and probes one new or changed binary once it gets an
// admission slot, then records the verdict. ctx ends when the file is
// removed, the registry closes or the poll's caller gives up: then nothing
// is decided and a later poll starts over.
func (r *Registry) load(ctx context.Context, se SourceEntry, j *loadJob) {
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		r.finish(ctx, se, j, nil, ctx.Err())
		return
	}
	actx, cancel := context.WithTimeout(ctx, r.cfg.AdmitTimeout)
	defer cancel()
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
		wasm, err = r.src.Read(actx, se.Name, r.rt.cfg.MaxModuleBytes+1)
	}
	if err == nil {
		sum := sha256.Sum256(wasm)
		next.id.SHA256 = hex.EncodeToString(sum[:])
		r.mu.Lock()
		j.id = next.id
		old := r.entries[se.Name]
		unchanged := old != nil && old.id.SHA256 == next.id.SHA256
		if unchanged && ctx.Err() == nil {
			// Touched but unchanged: keep it as it is (serving, refused or
			// rolled back).
			old.size, old.modTime = se.Size, se.ModTime
		}
		r.mu.Unlock()
		if unchanged {
			r.finish(ctx, se, j, nil, nil)
			return
		}
		next.plugin, err = r.admit(actx, ref, wasm)
	}
	r.finish(ctx, se, j, next, err)
}

// finish records an admission's verdict (next nil: nothing to record).
func (r *Registry) finish(ctx context.Context, se SourceEntry, j *loadJob, next *regEntry, err error) {
	r.mu.Lock()
	if r.loading[se.Name] == j {
		delete(r.loading, se.Name)
	}
	if next == nil || r.closed || ctx.Err() != nil {
		r.mu.Unlock()
		if next != nil && next.plugin != nil {
			next.plugin.Release()
		}
		return
	}
	old := r.entries[se.Name]
	kept := false
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
			next.plugin, next.id, next.trial, kept = old.plugin, old.id, old.trial, true
		}
	}
	r.entries[se.Name] = next
	r.mu.Unlock()
	switch {
	case err == nil:
		r.log.Info("plugin loaded", "plugin", next.id.String(), "file", se.Name)
	case kept:
		r.log.Error("plugin update refused, previous binary keeps serving", "file", se.Name, "serving", old.id.String(), "error", err)
	default:
		r.log.Error("plugin refused", "file", se.Name, "error", err)
	}
	if old != nil && old.plugin != nil && old.plugin != next.plugin {
		old.plugin.Release() // running instances keep their own references
	}
}

// admit runs admission and a trial instance (_initialize + manifest), both
// within ctx's deadline.
func (r *Registry) admit(ctx context.Context, ref string, wasm []byte) (*Plugin, error) {
	p, err := r.rt.Admit(ctx, ref, wasm)
	if err != nil {
		return nil, err
	}
	grant := min(max(r.cfg.ProbeGrant, p.MinMemory()), r.rt.cfg.MaxGrant)
	deadline, _ := ctx.Deadline()
	inst, err := r.rt.NewInstance(ctx, p, InstanceConfig{Grant: grant, Deadline: deadline, ManifestOnly: true})
	if err != nil {
		p.Release()
		if errors.Is(err, ErrDeadline) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = &AdmissionError{Plugin: p.id, Rule: RuleAdmitTimeout,
				Detail: fmt.Sprintf("admission and the trial instance (_initialize, manifest) did not finish within %s", r.cfg.AdmitTimeout)}
		}
		return nil, err
	}
	m := inst.Manifest()
	inst.Close()
	if err := r.rt.CheckRunnable(p, m, r.cfg.MaxMemory); err != nil {
		p.Release()
		return nil, err
	}
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
	out := make([]PluginStatus, 0, len(r.entries)+len(r.loading))
	for _, e := range r.entries {
		out = append(out, PluginStatus{File: e.file, ID: e.id, Active: active[e.id.Name] == e, Loading: r.loading[e.file] != nil, Err: e.err})
	}
	for file, j := range r.loading {
		if r.entries[file] == nil {
			out = append(out, PluginStatus{File: file, ID: j.id, Loading: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Close cancels the admissions in flight and waits for them, then
// releases the registry's references; plugins still in use by running
// instances stay alive until those finish.
func (r *Registry) Close() {
	r.mu.Lock()
	entries := r.entries
	r.entries, r.closed = map[string]*regEntry{}, true
	for _, j := range r.loading {
		j.cancel()
	}
	r.mu.Unlock()
	r.jobs.Wait()
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
