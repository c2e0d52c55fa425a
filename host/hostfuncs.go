package host

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/compacthost/compacthost/abi"
)

// Rate limit of guest log lines, per instance.
const (
	logBurst     = 100 // log lines allowed at once
	logPerSecond = 50  // refill rate of the log budget
)

// stateKey carries the calling instance's *callState in the ctx passed to
// each guest call; host functions find their per-instance state there, so
// one host module serves every instance of the runtime.
type stateKey struct{}

// callState is an instance's state seen by host functions. An instance is
// single-threaded (one guest call at a time), so no locking is needed.
type callState struct {
	inst    *Instance
	failMsg string
	misuse  error // set when the guest broke the ABI in a host call

	logTokens float64
	logLast   time.Time
	logDrops  int
}

// abiMisuse aborts the current guest call: the panic is recovered by
// wazero and returned from Call; the instance classifies it from
// callState.misuse.
func (s *callState) abiMisuse(format string, args ...any) {
	s.misuse = fmt.Errorf(format, args...)
	panic(s.misuse)
}

func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(stateKey{}).(*callState)
	return s
}

// view returns the guest bytes [ptr, ptr+n), bounds-checked against the
// caller's memory; out-of-range pointers abort the call as ABI misuse.
func (s *callState) view(mod api.Module, fn string, ptr, n uint32) []byte {
	mem := mod.Memory()
	if mem == nil {
		s.abiMisuse("%s: module has no memory", fn)
	}
	if uint64(ptr)+uint64(n) > uint64(mem.Size()) {
		s.abiMisuse("%s: buffer [%d, +%d) is outside guest memory of %d bytes", fn, ptr, n, mem.Size())
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		s.abiMisuse("%s: buffer [%d, +%d) is outside guest memory", fn, ptr, n)
	}
	return b
}

func instantiateHostModule(ctx context.Context, wz wazero.Runtime) error {
	i32 := api.ValueTypeI32
	b := wz.NewHostModuleBuilder(abi.ModuleName)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostEmit), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportEmit)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostLog), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostFail), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportFail)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostProbe), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportProbe)
	_, err := b.Instantiate(ctx)
	return err
}

// hostEmit: emit(kind, ptr, len) -> status. The decisions buffer is handed
// to the instance's Emit callback as a view; the callback decodes or copies
// it (the one read of the guest's output).
func hostEmit(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		stack[0] = uint64(abi.StatusError)
		return
	}
	kind, ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	data := s.view(mod, "emit", ptr, n)
	if err := s.inst.emit(abi.EmitKind(kind), data); err != nil {
		s.abiMisuse("emit %s (%d bytes): %v", abi.EmitKind(kind), n, err)
	}
	stack[0] = uint64(abi.StatusOK)
}

// hostLog: log(level, ptr, len). Lines are truncated to abi.MaxLogMessage and
// rate-limited per instance; dropped lines are counted and reported once
// the budget refills.
func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		return
	}
	level, ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	data := s.view(mod, "log", ptr, n)
	now := time.Now()
	if s.logLast.IsZero() {
		s.logTokens = logBurst
	} else {
		s.logTokens = min(logBurst, s.logTokens+now.Sub(s.logLast).Seconds()*logPerSecond)
	}
	s.logLast = now
	if s.logTokens < 1 {
		s.logDrops++
		return
	}
	s.logTokens--
	if len(data) > abi.MaxLogMessage {
		data = data[:abi.MaxLogMessage]
	}
	lg := s.inst.log
	if s.logDrops > 0 {
		lg.Warn("guest log lines dropped by rate limit", "dropped", s.logDrops)
		s.logDrops = 0
	}
	lg.Log(guestLevel(abi.LogLevel(level)), string(data))
}

func guestLevel(l abi.LogLevel) hclog.Level {
	switch l {
	case abi.LogTrace:
		return hclog.Trace
	case abi.LogDebug:
		return hclog.Debug
	case abi.LogInfo:
		return hclog.Info
	case abi.LogWarn:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

// hostFail: fail(code, ptr, len) records the message for the error status
// the guest is about to return.
func hostFail(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		return
	}
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	data := s.view(mod, "fail", ptr, n)
	if len(data) > abi.MaxFailMessage {
		data = data[:abi.MaxFailMessage]
	}
	s.failMsg = string(data)
}

// hostProbe: probe(ptr, len, out_ptr) -> status. The input is len bytes of
// (delete index u32, target index u32) pairs; the host writes one bit per
// pair (LSB first) at out_ptr.
func hostProbe(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		stack[0] = uint64(abi.StatusError)
		return
	}
	ptr, n, out := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	if n%8 != 0 {
		s.abiMisuse("probe: length %d is not a multiple of 8 (pairs of u32)", n)
	}
	pairs := s.view(mod, "probe", ptr, n)
	hits := s.view(mod, "probe output", out, (n/8+7)/8)
	if s.inst.probe == nil {
		stack[0] = uint64(abi.StatusUnsupported)
		return
	}
	if err := s.inst.probe(pairs, hits); err != nil {
		s.abiMisuse("probe: %v", err)
	}
	stack[0] = uint64(abi.StatusOK)
}
