//go:build wasip1

package sdk

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/compacthost/compacthost/abi"
)

// Host imports (module compact_v1). Pointers are wasm32 linear-memory
// addresses; Go never moves heap objects, so an address stays valid while
// the object is referenced.

//go:wasmimport compact_v1 emit
func importEmit(kind, ptr, n uint32) uint32

//go:wasmimport compact_v1 log
func importLog(level, ptr, n uint32)

//go:wasmimport compact_v1 fail
func importFail(code, ptr, n uint32)

//go:wasmimport compact_v1 probe
func importProbe(ptr, n, out uint32) uint32

func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

type wasmHost struct{}

func (wasmHost) emit(kind abi.EmitKind, buf []byte) abi.Status {
	st := importEmit(uint32(kind), addr(buf), uint32(len(buf)))
	runtime.KeepAlive(buf)
	return abi.Status(st)
}

func (wasmHost) probe(pairs, hits []byte) abi.Status {
	st := importProbe(addr(pairs), uint32(len(pairs)), addr(hits))
	runtime.KeepAlive(pairs)
	runtime.KeepAlive(hits)
	return abi.Status(st)
}

func sendLog(level abi.LogLevel, msg string) {
	if len(msg) > abi.MaxLogMessage {
		msg = msg[:abi.MaxLogMessage]
	}
	b := []byte(msg)
	importLog(uint32(level), addr(b), uint32(len(b)))
	runtime.KeepAlive(b)
}

func sendFail(e *abi.Error) uint32 {
	b := []byte(e.Message)
	importFail(uint32(e.Status), addr(b), uint32(len(b)))
	runtime.KeepAlive(b)
	return uint32(e.Status)
}

var (
	theRunner *runner
	initErr   *abi.Error
	inbuf     []uint64 // the input buffer handed out by compact_v1_alloc (8-aligned)
	grant     uint64   // memory_grant of the current task, 0 before the first begin
	// staticEnd approximates where the Go heap starts in linear memory: the
	// data and BSS segments lie below it.
	staticEnd = heapStart()
	heapSink  *[16]byte
)

// heapStart returns the address of a fresh heap object (stored in a global
// so that it cannot live on the stack); on wasm the heap grows upward from
// the end of the static data.
func heapStart() uint64 {
	heapSink = new([16]byte)
	return uint64(uintptr(unsafe.Pointer(heapSink)))
}

func getRunner() (*runner, *abi.Error) {
	if theRunner != nil || initErr != nil {
		return theRunner, initErr
	}
	if registered == nil {
		initErr = &abi.Error{Status: abi.StatusError, Message: "sdk: no strategy registered (call sdk.Register from an init function of package main)"}
		return nil, initErr
	}
	r, err := newRunner(registered, wasmHost{})
	if err != nil {
		initErr = &abi.Error{Status: abi.StatusError, Message: err.Error()}
		return nil, initErr
	}
	theRunner = r
	return r, nil
}

//go:wasmexport compact_v1_manifest
func exportManifest() uint64 {
	r, e := getRunner()
	if e != nil {
		sendFail(e)
		return 0
	}
	return uint64(addr(r.mjson))<<32 | uint64(len(r.mjson))
}

//go:wasmexport compact_v1_alloc
func exportAlloc(size int32) uint32 {
	if size <= 0 {
		return 0
	}
	words := (int(size) + 7) / 8
	if words > cap(inbuf) {
		if err := CheckMemory(uint64(words) * 8); err != nil {
			sendFail(err.(*abi.Error))
			return 0
		}
		inbuf = nil
		inbuf = make([]uint64, words)
	}
	inbuf = inbuf[:cap(inbuf)]
	return uint32(uintptr(unsafe.Pointer(&inbuf[0])))
}

// input returns the bytes [ptr, ptr+n) if they lie inside the buffer
// compact_v1_alloc returned.
func input(ptr, n uint32) ([]byte, *abi.Error) {
	if n == 0 {
		return nil, nil
	}
	if len(inbuf) == 0 {
		return nil, &abi.Error{Status: abi.StatusBadInput, Message: "input buffer was not obtained from compact_v1_alloc"}
	}
	base := uint64(uintptr(unsafe.Pointer(&inbuf[0])))
	if uint64(ptr) < base || uint64(ptr)+uint64(n) > base+uint64(len(inbuf))*8 {
		return nil, &abi.Error{Status: abi.StatusBadInput, Message: fmt.Sprintf("input [%d, +%d) is outside the buffer [%d, +%d) returned by compact_v1_alloc", ptr, n, base, len(inbuf)*8)}
	}
	all := unsafe.Slice((*byte)(unsafe.Pointer(&inbuf[0])), len(inbuf)*8)
	off := uint64(ptr) - base
	return all[off : off+uint64(n) : off+uint64(n)], nil
}

func status(err error) uint32 {
	if err == nil {
		return uint32(abi.StatusOK)
	}
	return sendFail(err.(*abi.Error)) // runner.call always returns *abi.Error
}

func withInput(ptr, n uint32, f func(*runner, []byte) error) uint32 {
	r, e := getRunner()
	if e != nil {
		return sendFail(e)
	}
	buf, e := input(ptr, n)
	if e != nil {
		r.phase, r.failure = phaseFailed, e.Status.String()
		return sendFail(e)
	}
	return status(f(r, buf))
}

//go:wasmexport compact_v1_begin
func exportBegin(ptr, n uint32) uint32 { return withInput(ptr, n, (*runner).begin) }

//go:wasmexport compact_v1_deletes
func exportDeletes(ptr, n uint32) uint32 { return withInput(ptr, n, (*runner).deletes) }

//go:wasmexport compact_v1_batch
func exportBatch(ptr, n uint32) uint32 { return withInput(ptr, n, (*runner).batchCall) }

//go:wasmexport compact_v1_finish
func exportFinish() uint32 {
	r, e := getRunner()
	if e != nil {
		return sendFail(e)
	}
	return status(r.finish())
}

// headroom is the share of the grant kept free of the Go heap for stacks,
// runtime metadata and the last partial heap arena.
const headroomPercent = 15

// applyGrant sets the Go soft memory limit below the grant: the grant minus
// the static data below the heap, minus headroom.
func applyGrant(g uint64) error {
	reserve := staticEnd + g*headroomPercent/100
	if g <= reserve+(4<<20) {
		return abi.Errorf(abi.StatusOutOfMemory, "memory grant of %d bytes leaves no heap: the module's static data ends near %d bytes and %d%% is kept as headroom", g, staticEnd, headroomPercent)
	}
	grant = g
	debug.SetMemoryLimit(int64(g - reserve))
	sendLog(abi.LogDebug, fmt.Sprintf("sdk: memory grant %d bytes, static data below %d, Go memory limit %d", g, staticEnd, g-reserve))
	return nil
}

// CheckMemory reports, as an *abi.Error with StatusOutOfMemory, when n more
// bytes would not fit in the task's memory grant, so a strategy can fail
// cleanly instead of letting the Go runtime abort. It is an estimate (heap
// obtained from the runtime plus static data); before the first task it
// always succeeds.
func CheckMemory(n uint64) error {
	if grant == 0 {
		return nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := staticEnd + ms.Sys
	free := ms.HeapIdle - ms.HeapReleased // already obtained, reusable
	if used+n > grant+free {
		return abi.Errorf(abi.StatusOutOfMemory, "%d more bytes would not fit: about %d of the %d-byte grant are in use", n, used, grant)
	}
	return nil
}

func logf(level abi.LogLevel, msg string) { sendLog(level, msg) }
