package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/admission"
	"github.com/compacthost/compacthost/host/internal/wasmtest"
)

// Defaults for Config's zero values.
const (
	DefaultMaxModuleBytes = 16 << 20 // a Go strategy is ~3 MB; bounds decode work too
	DefaultMaxGrant       = 4 << 30
	DefaultTaskTimeout    = 10 * time.Minute
	DefaultOutputLimit    = 16 << 10
)

// Config configures a Runtime. The zero value is usable.
type Config struct {
	// CacheDir holds wazero's persistent compilation cache (machine code:
	// keep it owned by the host user). Empty means an in-memory cache.
	CacheDir string
	// MaxModuleBytes refuses larger binaries (default DefaultMaxModuleBytes).
	MaxModuleBytes int64
	// MaxGrant is the largest linear-memory grant any instance will get; a
	// module whose declared minimum memory exceeds it is refused at admission
	// (default DefaultMaxGrant).
	MaxGrant uint64
	// TaskTimeout is the per-task deadline when an instance is created
	// without one (default DefaultTaskTimeout).
	TaskTimeout time.Duration
	// Uninterruptible turns off wazero's WithCloseOnContextDone for every
	// plugin. By default guest code is compiled with termination checks so a
	// task deadline stops even a guest looping without host calls. The
	// checks are an exit to Go at every loop header (wazero v1.12), measured
	// here (BenchmarkCloseOnContextDone, 2-core AMD EPYC): a Go guest
	// sorting 1024 uint64s 8 times per batch takes 2.8-3.4 ms with them and
	// 0.45-0.47 ms without (~6.7x); the SDK's evenpk mix strategy takes
	// 0.76-0.87 ms vs 0.13-0.27 ms per 4096-row batch (3-6x). Each guest
	// call also gets a wazero watcher goroutine: a batch crossing costs
	// ~3 us instead of 0.23 us. Without the checks the deadline is only
	// checked between guest calls and a looping guest holds its goroutine
	// forever: use it only for reviewed, trusted strategies (or see
	// TrustPinned). RATIONALE-host.md explains the default.
	Uninterruptible bool
	// TrustPinned runs plugins whose sha256 matches their entry in Pins
	// without termination checks (as Uninterruptible does), and all others
	// with them: pinning the reviewed bytes buys the fast path.
	TrustPinned bool
	// RealClock gives guests the host's wall and monotonic clocks and real
	// sleeps; by default they see wazero's deterministic fake clocks.
	RealClock bool
	// OutputLimit caps the bytes of guest stdout/stderr kept for error
	// messages (default DefaultOutputLimit).
	OutputLimit int
	// Pins maps "name@version" to the expected lowercase hex sha256; a
	// module under a pinned name with other bytes is refused.
	Pins map[string]string
	// Logger receives host and guest logs (default: hclog.NewNullLogger()).
	Logger hclog.Logger
}

// Runtime compiles, admits and instantiates strategy modules. It owns one
// wazero runtime on the compiler engine and one compact_v1 host module.
// It is safe for concurrent use.
type Runtime struct {
	cfg     Config
	cache   wazero.CompilationCache
	guarded wazero.Runtime // WithCloseOnContextDone: deadlines interrupt guest loops
	trusted wazero.Runtime // without termination checks; nil unless configured
	log     hclog.Logger
	closed  atomic.Bool
}

// coreFeatures is what Go (gc) wasip1 guests use: WebAssembly 2.0 without
// SIMD (bulk memory and reference types are mutually dependent in wazero).
const coreFeatures = api.CoreFeaturesV2 &^ api.CoreFeatureSIMD

// NewRuntime starts a runtime on wazero's compiler engine. It fails, rather
// than falling back to the interpreter, when the platform cannot run
// compiled code (unsupported GOARCH, or executable memory denied by
// seccomp/SELinux).
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if cfg.MaxGrant == 0 {
		cfg.MaxGrant = DefaultMaxGrant
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if cfg.OutputLimit <= 0 {
		cfg.OutputLimit = DefaultOutputLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, fmt.Errorf("host: wazero compiler engine unavailable on %s/%s (the interpreter is ~10x slower and is not used)", runtime.GOOS, runtime.GOARCH)
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger.Named("host")}
	var err error
	if cfg.CacheDir != "" {
		if r.cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", cfg.CacheDir, err)
		}
	} else {
		r.cache = wazero.NewCompilationCache()
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(coreFeatures).
		WithCompilationCache(r.cache)
	if !cfg.Uninterruptible {
		if r.guarded, err = start(ctx, rc.WithCloseOnContextDone(true)); err != nil {
			r.cache.Close(ctx)
			return nil, err
		}
	}
	if cfg.Uninterruptible || cfg.TrustPinned {
		if r.trusted, err = start(ctx, rc); err != nil {
			if r.guarded != nil {
				r.guarded.Close(ctx)
			}
			r.cache.Close(ctx)
			return nil, err
		}
	}
	return r, nil
}

// start creates the wazero runtime, proves the compiler can emit and run
// machine code here, and instantiates the host modules.
func start(ctx context.Context, rc wazero.RuntimeConfig) (wz wazero.Runtime, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("host: wazero compiler engine failed to start on %s/%s: %v", runtime.GOOS, runtime.GOARCH, p)
		}
	}()
	wz = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := smokeTest(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, fmt.Errorf("host: wazero compiler engine cannot run code on %s/%s (executable memory denied?): %w", runtime.GOOS, runtime.GOARCH, err)
	}
	// WASI is instantiated whole; admission's import allowlist limits a
	// module to the functions a Go reactor needs. No FS, no sockets.
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, fmt.Errorf("host: WASI module: %w", err)
	}
	if err := instantiateHostModule(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, fmt.Errorf("host: %s host module: %w", abi.ModuleName, err)
	}
	return wz, nil
}

// smokeTest compiles and runs a one-function module returning 42.
func smokeTest(ctx context.Context, wz wazero.Runtime) error {
	m := wasmtest.New()
	m.Export("f", m.Func(wasmtest.Func{Results: []byte{wasmtest.I32}, Body: wasmtest.I32Const(42)}))
	mod, err := wz.InstantiateWithConfig(ctx, m.Bytes(), wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return err
	}
	defer mod.Close(ctx)
	res, err := mod.ExportedFunction("f").Call(ctx)
	if err != nil {
		return err
	}
	if len(res) != 1 || res[0] != 42 {
		return errors.New("smoke test returned a wrong value")
	}
	return nil
}

// Close closes every instance and compiled plugin, then the compilation
// cache (the persistent directory is kept). Close instances first: closing
// the runtime under a running guest call is not supported.
func (r *Runtime) Close(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	for _, wz := range []wazero.Runtime{r.guarded, r.trusted} {
		if wz != nil {
			errs = append(errs, wz.Close(ctx))
		}
	}
	return errors.Join(append(errs, r.cache.Close(ctx))...)
}

// Plugin is an admitted, compiled strategy module. It is reference
// counted: the creator holds one reference, each Instance holds one, and
// the compiled code is freed when the last is released.
type Plugin struct {
	id        PluginID
	wz        wazero.Runtime // the wazero runtime it was compiled in
	guarded   bool           // compiled with termination checks
	compiled  wazero.CompiledModule
	minMemory uint64
	// unnamed is set while AdmitUnnamed reads the manifest that names the plugin.
	unnamed bool
	size    int
	refs    atomic.Int64
}

// ID identifies the plugin (name@version and sha256).
func (p *Plugin) ID() PluginID { return p.id }

// Interruptible reports whether a deadline can stop the plugin's code
// mid-loop (compiled with termination checks).
func (p *Plugin) Interruptible() bool { return p.guarded }

// MinMemory is the module's declared minimum linear memory in bytes.
func (p *Plugin) MinMemory() uint64 { return p.minMemory }

// Size is the binary's size in bytes.
func (p *Plugin) Size() int { return p.size }

// Retain adds a reference. It reports false if the plugin was already
// released to zero (its code is gone and it cannot be used).
func (p *Plugin) Retain() bool {
	for {
		n := p.refs.Load()
		if n <= 0 {
			return false
		}
		if p.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release drops a reference; the last one closes the compiled module.
func (p *Plugin) Release() {
	if p.refs.Add(-1) == 0 {
		p.compiled.Close(context.Background())
	}
}

// ParseRef splits "name@version" and checks both parts are non-empty and
// free of path separators.
func ParseRef(ref string) (name, version string, err error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok || name == "" || version == "" || strings.ContainsAny(ref, `/\`) || strings.Contains(version, "@") {
		return "", "", fmt.Errorf("host: plugin reference %q is not name@version", ref)
	}
	return name, version, nil
}

// Admit checks and compiles a strategy binary named ref ("name@version").
// Rules, in order: size limit, sha256 pin, structural pre-scan (counts
// against bytes, locals, table sizes) and wazero validation, ABI version,
// import allowlist, required exports and signatures, declared minimum
// memory against Config.MaxGrant. A refusal is an *AdmissionError. No guest
// code runs. The returned plugin holds one reference for the caller.
func (r *Runtime) Admit(ctx context.Context, ref string, wasm []byte) (*Plugin, error) {
	name, version, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	id := PluginID{Name: name, Version: version, SHA256: hex.EncodeToString(sum[:])}
	refuse := func(rule, format string, args ...any) error {
		return &AdmissionError{Plugin: id, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	if int64(len(wasm)) > r.cfg.MaxModuleBytes {
		return nil, refuse(admission.RuleSize, "binary is %d bytes, limit %d", len(wasm), r.cfg.MaxModuleBytes)
	}
	want, pinned := r.cfg.Pins[ref]
	if pinned && !strings.EqualFold(want, id.SHA256) {
		return nil, refuse(admission.RulePin, "sha256 %s does not match the pinned %s", id.SHA256, want)
	}
	wz, guarded := r.guarded, true
	if r.guarded == nil || (pinned && r.cfg.TrustPinned) {
		wz, guarded = r.trusted, false
	}
	if r.closed.Load() {
		return nil, fmt.Errorf("host: admit %s: runtime closed", id)
	}
	if v := admission.Prescan(wasm); v != nil {
		return nil, refuse(v.Rule, "%s", v.Detail)
	}
	start := time.Now()
	cm, err := wz.CompileModule(ctx, wasm)
	if err != nil {
		return nil, refuse(admission.RuleValidate, "%v", err)
	}
	minMem, v := admission.Check(cm, r.cfg.MaxGrant)
	if v != nil {
		cm.Close(ctx)
		return nil, refuse(v.Rule, "%s", v.Detail)
	}
	p := &Plugin{id: id, wz: wz, guarded: guarded, compiled: cm, minMemory: minMem, size: len(wasm)}
	p.refs.Store(1)
	r.log.Debug("plugin admitted", "plugin", id.String(), "bytes", len(wasm), "compile", time.Since(start), "interruptible", guarded)
	return p, nil
}
