package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host/internal/admission"
	"github.com/compacthost/compacthost/mempool"
)

// InstanceConfig configures one instance (one task).
type InstanceConfig struct {
	// Grant caps the instance's linear memory in bytes (the lease's plugin
	// share). Required.
	Grant uint64
	// Deadline ends the task; zero means now + Config.TaskTimeout. Every
	// guest call also honours its own ctx.
	Deadline time.Time
	// Emit receives each decisions buffer the guest emits. data is a view of
	// guest memory valid only during the callback: decode or copy it. An
	// error fails the task as ABI misuse (malformed decisions). Nil decodes
	// into the instance's Decisions.
	Emit func(kind abi.EmitKind, data []byte) error
	// Probe answers the L0 bloom probe: pairs holds (delete index u32,
	// target index u32) little-endian pairs; set bit i of hits (LSB first)
	// for a hit of pair i. Nil answers UNSUPPORTED.
	Probe func(pairs, hits []byte) error
	// Env adds WASI environment variables (in key order). GOMEMLIMIT is
	// always set by the host to 85% of Grant and cannot be overridden.
	Env map[string]string
	// ManifestOnly marks a trial instance that only reads the manifest
	// (admission, a first use): the manifest's min_memory is then checked
	// against the runtime's MaxGrant, not against Grant, so a strategy
	// asking for more than the small trial grant is still admitted and
	// gets its min_memory when a task runs it.
	ManifestOnly bool
}

// Instance is one running copy of a plugin with its own capped memory. It
// is single-threaded: call Begin, Send, Batch, Deletes and Finish from one
// goroutine at a time. Close may come from any goroutine; during a call it
// takes effect when the call returns (the linear memory cannot be unmapped
// under running guest code). After any failure the instance is closed and
// further calls return the failure.
type Instance struct {
	plugin   *Plugin
	mod      api.Module
	alloc    *mempool.MemoryAllocator
	grant    uint64
	deadline time.Time
	// memoryLimit is what the manifest's min_memory must fit: the grant,
	// or MaxGrant for a ManifestOnly instance.
	memoryLimit     uint64
	memoryLimitName string
	out             *headBuffer
	log             hclog.Logger
	emit            func(abi.EmitKind, []byte) error
	probe           func(pairs, hits []byte) error
	state           callState
	manifest        abi.Manifest
	decisions       abi.Decisions

	fnAlloc, fnBegin, fnDeletes, fnBatch, fnFinish api.Function
	stack                                          [2]uint64

	closeOnce   sync.Once
	mu          sync.Mutex // guards dead, busy, closeWanted
	dead        error
	busy        bool // a method is touching guest memory or running guest code
	closeWanted bool // Close arrived while busy
}

// NewInstance instantiates p with linear memory capped at cfg.Grant, runs
// the guest's _initialize, reads and checks its manifest. The instance
// holds a reference on p until Close.
func (r *Runtime) NewInstance(ctx context.Context, p *Plugin, cfg InstanceConfig) (*Instance, error) {
	if cfg.Grant < p.minMemory {
		return nil, &AdmissionError{Plugin: p.id, Rule: admission.RuleMemory,
			Detail: fmt.Sprintf("declared minimum memory %d bytes exceeds the grant of %d bytes", p.minMemory, cfg.Grant)}
	}
	if !p.Retain() {
		return nil, fmt.Errorf("host: plugin %s: %w (released)", p.id, ErrClosed)
	}
	inst := &Instance{
		plugin: p, grant: cfg.Grant, deadline: cfg.Deadline,
		alloc: mempool.NewMemoryAllocator(cfg.Grant),
		out:   &headBuffer{limit: r.cfg.OutputLimit},
		log:   r.log.Named(p.id.Ref()),
		emit:  cfg.Emit, probe: cfg.Probe,
	}
	if inst.deadline.IsZero() {
		inst.deadline = time.Now().Add(r.cfg.TaskTimeout)
	}
	inst.memoryLimit, inst.memoryLimitName = cfg.Grant, "grant"
	if cfg.ManifestOnly {
		inst.memoryLimit, inst.memoryLimitName = r.cfg.MaxGrant, "runtime's MaxGrant"
	}
	if inst.emit == nil {
		inst.emit = inst.decisions.Add
	}
	inst.state.inst = inst
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithStdout(inst.out).WithStderr(inst.out).
		WithEnv("GOMEMLIMIT", strconv.FormatUint(cfg.Grant/100*85, 10))
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		if k != "GOMEMLIMIT" {
			mc = mc.WithEnv(k, cfg.Env[k])
		}
	}
	if r.cfg.RealClock {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	ictx, cancel := inst.callContext(experimental.WithMemoryAllocator(ctx, inst.alloc))
	defer cancel()
	mod, err := instantiate(ictx, p, mc)
	if err != nil {
		return nil, inst.classify("instantiate", err, ictx) // discards inst, releasing p
	}
	inst.mod = mod
	fn := func(name string) api.Function { return mod.ExportedFunction(name) }
	inst.fnAlloc, inst.fnBegin, inst.fnDeletes = fn(abi.ExportAlloc), fn(abi.ExportBegin), fn(abi.ExportDeletes)
	inst.fnBatch, inst.fnFinish = fn(abi.ExportBatch), fn(abi.ExportFinish)
	if init := fn(abi.ExportInitialize); init != nil {
		if _, err := inst.call(ictx, abi.ExportInitialize, init); err != nil {
			return nil, err
		}
	}
	if err := inst.readManifest(ictx, fn(abi.ExportManifest)); err != nil {
		return nil, err
	}
	return inst, nil
}

// instantiate turns a panic inside wazero's InstantiateModule (e.g. an
// allocator refusing the initial size) into an error.
func instantiate(ctx context.Context, p *Plugin, mc wazero.ModuleConfig) (mod api.Module, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("instantiation panicked: %v", r)
		}
	}()
	return p.wz.InstantiateModule(ctx, p.compiled, mc)
}

// readManifest calls compact_v1_manifest, copies the JSON out once and
// checks it (abi.Manifest.Validate), that name and version match the
// plugin's, and that min_memory fits the grant.
func (i *Instance) readManifest(ctx context.Context, f api.Function) error {
	packed, err := i.call(ctx, abi.ExportManifest, f)
	if err != nil {
		return err
	}
	ptr, n := uint32(packed>>32), uint32(packed)
	b, ok := i.mod.Memory().Read(ptr, n)
	if !ok {
		return i.fail(abi.ExportManifest, ErrABIMisuse, fmt.Sprintf("manifest [%d, +%d) is outside guest memory", ptr, n), "", nil)
	}
	refuse := func(format string, args ...any) error {
		err := &AdmissionError{Plugin: i.plugin.id, Rule: admission.RuleManifest, Detail: fmt.Sprintf(format, args...)}
		i.discard(err)
		return err
	}
	m, err := abi.ParseManifest(b)
	if err != nil {
		return refuse("%s", strings.TrimPrefix(err.Error(), "abi: "))
	}
	i.manifest = m
	if sel, ok := impossibleSelector(m); ok {
		return refuse("field selector %q names no field any Milvus collection has (system fields are 0 and 1, user fields start at %d)", sel, firstUserFieldID)
	}
	switch {
	case i.plugin.unnamed:
		// AdmitUnnamed takes the plugin's name and version from this manifest.
	case m.Name != i.plugin.id.Name:
		return refuse("manifest name %q does not match the plugin name %q", m.Name, i.plugin.id.Name)
	case m.Version != i.plugin.id.Version:
		return refuse("manifest version %q does not match the plugin version %q", m.Version, i.plugin.id.Version)
	case m.MinMemory > i.memoryLimit:
		i.discard(nil)
		return &AdmissionError{Plugin: i.plugin.id, Rule: admission.RuleMemory,
			Detail: fmt.Sprintf("manifest min_memory %d bytes exceeds the %s of %d bytes", m.MinMemory, i.memoryLimitName, i.memoryLimit)}
	}
	return nil
}

// Manifest returns the manifest the guest declared.
func (i *Instance) Manifest() abi.Manifest { return i.manifest }

// Decisions returns the decisions emitted so far when InstanceConfig.Emit
// was nil (decoded once from guest memory as they were emitted).
func (i *Instance) Decisions() *abi.Decisions { return &i.decisions }

// Plugin returns the instance's plugin.
func (i *Instance) Plugin() *Plugin { return i.plugin }

// Begin sends the task JSON (compact_v1_begin).
func (i *Instance) Begin(ctx context.Context, task []byte) error {
	return i.Send(ctx, abi.ExportBegin, uint32(len(task)), func(dst []byte) error {
		copy(dst, task)
		return nil
	})
}

// Deletes sends one encoded delete batch of size bytes; fill encodes it
// directly into guest memory (compact_v1_deletes).
func (i *Instance) Deletes(ctx context.Context, size uint32, fill func(dst []byte) error) error {
	return i.Send(ctx, abi.ExportDeletes, size, fill)
}

// Batch sends one encoded row batch of size bytes; fill encodes it
// directly into guest memory (compact_v1_batch). This is the one copy into
// the guest.
func (i *Instance) Batch(ctx context.Context, size uint32, fill func(dst []byte) error) error {
	return i.Send(ctx, abi.ExportBatch, size, fill)
}

// Finish ends the input; the guest emits its remaining decisions.
func (i *Instance) Finish(ctx context.Context) error {
	if err := i.enter(); err != nil {
		return err
	}
	defer i.exit()
	ctx, cancel := i.callContext(ctx)
	defer cancel()
	return i.status(ctx, abi.ExportFinish, i.fnFinish)
}

// SendBatch encodes a rows or deletes batch (by h.Kind) straight into a
// guest buffer with abi.EncodeInto and passes it to compact_v1_batch or
// compact_v1_deletes: the column bytes are copied once, into the guest.
func (i *Instance) SendBatch(ctx context.Context, h abi.BatchHeader, cols []abi.ColumnData) error {
	n, err := abi.EncodedSize(h.Rows, cols)
	if err != nil {
		return fmt.Errorf("host: plugin %s: %w", i.plugin.id, err)
	}
	op := abi.ExportBatch
	if h.Kind == abi.BatchDeletes {
		op = abi.ExportDeletes
	}
	return i.Send(ctx, op, uint32(n), func(dst []byte) error {
		_, err := abi.EncodeInto(dst, h, cols)
		return err
	})
}

// Send asks the guest for a size-byte buffer (compact_v1_alloc), lets fill
// write into it in place, then calls op (one of compact_v1_begin, _deletes,
// _batch) with the buffer.
func (i *Instance) Send(ctx context.Context, op string, size uint32, fill func(dst []byte) error) error {
	if err := i.enter(); err != nil {
		return err
	}
	defer i.exit()
	var f api.Function
	switch op {
	case abi.ExportBegin:
		f = i.fnBegin
	case abi.ExportDeletes:
		f = i.fnDeletes
	case abi.ExportBatch:
		f = i.fnBatch
	default:
		return fmt.Errorf("host: Send: %q is not an input export", op)
	}
	ctx, cancel := i.callContext(ctx)
	defer cancel()
	ptr, err := i.call(ctx, abi.ExportAlloc, i.fnAlloc, uint64(size))
	if err != nil {
		return err
	}
	if ptr == 0 && size > 0 {
		return i.fail(abi.ExportAlloc, ErrOutOfMemory, fmt.Sprintf("guest could not allocate %d bytes for %s", size, op), "", nil)
	}
	dst, ok := i.mod.Memory().Read(uint32(ptr), size)
	if !ok {
		return i.fail(abi.ExportAlloc, ErrABIMisuse, fmt.Sprintf("returned buffer [%d, +%d) is outside guest memory of %d bytes", uint32(ptr), size, i.mod.Memory().Size()), "", nil)
	}
	if err := fill(dst); err != nil {
		return fmt.Errorf("host: plugin %s: encoding input for %s: %w", i.plugin.id, op, err)
	}
	return i.status(ctx, op, f, ptr, uint64(size))
}

// status calls a status-returning export and maps non-zero statuses.
func (i *Instance) status(ctx context.Context, op string, f api.Function, params ...uint64) error {
	st, err := i.call(ctx, op, f, params...)
	if err != nil {
		return err
	}
	status := abi.Status(uint32(st))
	msg := i.state.failMsg
	if msg == "" {
		msg = "no message"
	}
	switch status {
	case abi.StatusOK:
		return nil
	case abi.StatusOutOfMemory:
		return i.fail(op, ErrOutOfMemory, status.String()+": "+msg, "", nil)
	default:
		return i.fail(op, ErrGuestFailed, status.String()+": "+msg, "", nil)
	}
}

// callContext prepares the ctx for one method's guest calls: it carries
// the instance's state for the host functions and, for interruptible
// plugins, the task deadline (not added when ctx already ends earlier).
// Uninterruptible plugins get no deadline; call checks it before entering
// the guest.
func (i *Instance) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithValue(ctx, stateKey{}, &i.state)
	if !i.plugin.guarded {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && !d.After(i.deadline) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, i.deadline)
}

// call invokes f (ctx from callContext) and classifies any failure. It
// returns the first result.
func (i *Instance) call(ctx context.Context, op string, f api.Function, params ...uint64) (uint64, error) {
	i.state.failMsg, i.state.misuse = "", nil
	if ctx.Err() != nil || !time.Now().Before(i.deadline) {
		return 0, i.fail(op, ErrDeadline, deadlineMessage(ctx, i.deadline)+" before the call", "", ctx.Err())
	}
	stack := i.stack[:]
	copy(stack, params)
	err := f.CallWithStack(ctx, stack)
	if err != nil {
		return 0, i.classify(op, err, ctx)
	}
	return stack[0], nil
}

// classify turns a wazero error into a TaskError and discards the instance.
func (i *Instance) classify(op string, err error, ctx context.Context) error {
	msg, stack, _ := strings.Cut(err.Error(), "\nwasm stack trace:\n")
	if stack != "" {
		stack = "wasm stack trace:\n" + stack
	}
	out := i.out.String()
	var exit *sys.ExitError
	switch {
	case i.state.misuse != nil:
		return i.fail(op, ErrABIMisuse, i.state.misuse.Error(), stack, err)
	case errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled):
		return i.fail(op, ErrDeadline, deadlineMessage(ctx, i.deadline), "", err)
	case i.alloc.Refused() > 0 || strings.Contains(out, "out of memory"):
		return i.fail(op, ErrOutOfMemory, fmt.Sprintf("grant of %d bytes exhausted (%d grow requests refused): %s", i.grant, i.alloc.Refused(), firstLine(out, msg)), stack, err)
	case strings.HasPrefix(out, "panic: ") || strings.Contains(out, "\npanic: "):
		// A Go guest's runtime prints the panic and aborts (a trap on Go
		// 1.26 wasip1, exit code 2 on older runtimes).
		_, p, _ := strings.Cut(out, "panic: ")
		return i.fail(op, ErrPanic, firstLine(p, ""), stack, err)
	case strings.Contains(out, "fatal error: "):
		_, p, _ := strings.Cut(out, "fatal error: ")
		return i.fail(op, ErrPanic, "fatal error: "+firstLine(p, ""), stack, err)
	case exit != nil:
		return i.fail(op, ErrExit, fmt.Sprintf("exit code %d: %s", exit.ExitCode(), firstLine(out, "no output")), "", err)
	case ctx.Err() != nil:
		return i.fail(op, ErrDeadline, deadlineMessage(ctx, i.deadline), stack, err)
	default:
		return i.fail(op, ErrTrap, strings.TrimPrefix(msg, "wasm error: "), stack, err)
	}
}

// deadlineMessage says what stopped a call: a cancel, or the earlier of the
// instance's deadline and ctx's (a caller's deadline may end a task, or a
// manifest probe, before the instance's own).
func deadlineMessage(ctx context.Context, deadline time.Time) string {
	if errors.Is(ctx.Err(), context.Canceled) {
		return "task cancelled"
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return "task deadline " + deadline.Format(time.RFC3339Nano) + " passed"
}

func firstLine(s, fallback string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return fallback
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// fail builds the TaskError, discards the instance and returns the error.
func (i *Instance) fail(op string, kind error, msg, stack string, err error) error {
	te := &TaskError{Plugin: i.plugin.id, Op: op, Kind: kind, Message: msg, Stack: stack, Stderr: i.out.String(), Err: err}
	i.discard(te)
	i.log.Warn("task failed, instance discarded", "op", op, "kind", kind.Error(), "message", msg)
	return te
}

// enter marks the instance busy for one method; it returns the reason if
// the instance is already discarded.
func (i *Instance) enter() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.dead != nil {
		return i.dead
	}
	i.busy = true
	return nil
}

// exit ends a busy section and performs a Close or discard requested
// meanwhile.
func (i *Instance) exit() {
	i.mu.Lock()
	i.busy = false
	wanted := i.closeWanted
	i.mu.Unlock()
	if wanted {
		i.close()
	}
}

// discard remembers why the instance is unusable and closes it, or defers
// the close to exit while a method is busy.
func (i *Instance) discard(reason error) {
	if reason == nil {
		reason = ErrClosed
	}
	i.mu.Lock()
	if i.dead == nil {
		i.dead = reason
	}
	if i.busy {
		i.closeWanted = true
		i.mu.Unlock()
		return
	}
	i.mu.Unlock()
	i.close()
}

func (i *Instance) close() {
	i.closeOnce.Do(func() {
		if i.mod != nil {
			i.mod.Close(context.Background())
		}
		i.alloc.Release() // also covers a failed instantiation
		i.plugin.Release()
	})
}

// Close discards the instance and releases its plugin reference.
func (i *Instance) Close() {
	i.discard(nil)
}

// Err returns why the instance was discarded, or nil while it is usable.
func (i *Instance) Err() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.dead
}

// MemoryRefused counts the guest's grow requests refused by the grant.
func (i *Instance) MemoryRefused() int64 { return i.alloc.Refused() }

// MemoryCommitted is the guest's committed linear memory in bytes.
func (i *Instance) MemoryCommitted() uint64 { return i.alloc.Committed() }

// headBuffer keeps the first limit bytes written to it (guest output).
type headBuffer struct {
	mu    sync.Mutex
	limit int
	b     []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.limit - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}
