//go:build wasip1

// Command guest is the host package's Go test strategy, built by the tests
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared. It speaks ABI v1
// directly (no SDK) and its behaviour is chosen per instance by the
// COMPACT_TEST_MODE environment variable:
//
//	ok       sums the batch bytes, finish emits the sum (kind 1, 8 bytes)
//	busy     sorts the batch as uint64s COMPACT_TEST_ROUNDS times (a real loop)
//	spin     batch never returns
//	bomb     batch allocates and keeps 1 MiB blocks forever
//	hold     begin allocates and keeps COMPACT_TEST_HOLD_MB MiB
//	panic    batch panics; recovered and reported via fail (as the SDK does)
//	rawpanic batch panics without recovery (the Go runtime exits)
//	badptr   batch passes an out-of-range pointer to emit
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"unsafe"
)

//go:wasmimport compact_v1 emit
func emit(kind, ptr, n uint32) uint32

//go:wasmimport compact_v1 fail
func fail(code, ptr, n uint32)

//go:wasmimport compact_v1 log
func hostLog(level, ptr, n uint32)

const manifest = `{"abi":1,"name":"guest","version":"1.0.0","handles":["mix"],"fields":["pk","ts"]}`

var (
	mode   = os.Getenv("COMPACT_TEST_MODE")
	rounds = envInt("COMPACT_TEST_ROUNDS", 1)
	input  []byte   // the buffer handed to the host by alloc
	kept   [][]byte // memory deliberately retained
	sum    uint64
	out    [8]byte
)

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func view(p, n uint32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n) }

//go:wasmexport compact_v1_alloc
func alloc(n uint32) uint32 {
	input = make([]byte, n)
	return ptr(input)
}

//go:wasmexport compact_v1_manifest
func getManifest() uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.StringData(manifest))))<<32 | uint64(len(manifest))
}

//go:wasmexport compact_v1_begin
func begin(p, n uint32) uint32 {
	msg := "begin " + string(view(p, n)) + " GOMEMLIMIT=" + os.Getenv("GOMEMLIMIT")
	hostLog(2, ptr([]byte(msg)), uint32(len(msg)))
	if mode == "hold" {
		for range envInt("COMPACT_TEST_HOLD_MB", 0) {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			kept = append(kept, b)
		}
	}
	return 0
}

//go:wasmexport compact_v1_deletes
func deletes(p, n uint32) uint32 { return 0 }

//go:wasmexport compact_v1_batch
func batch(p, n uint32) (status uint32) {
	defer func() {
		if mode != "panic" {
			return
		}
		if r := recover(); r != nil {
			msg := fmt.Sprintf("panic: %v", r)
			fail(1, ptr([]byte(msg)), uint32(len(msg)))
			status = 1
		}
	}()
	b := view(p, n)
	switch mode {
	case "spin":
		for i := 0; ; i++ {
			sum += uint64(i)
		}
	case "bomb":
		for {
			kept = append(kept, make([]byte, 1<<20))
		}
	case "panic", "rawpanic":
		var m map[string]int
		m["strategy bug"]++
	case "badptr":
		return emit(1, 0xfffffff0, 64)
	case "busy":
		vals := make([]uint64, len(b)/8)
		for r := 0; r < rounds; r++ {
			for i := range vals {
				vals[i] = binary.LittleEndian.Uint64(b[i*8:]) ^ uint64(r)
			}
			slices.Sort(vals)
		}
		if len(vals) > 0 {
			sum += vals[0]
		}
	default:
		for _, c := range b {
			sum += uint64(c)
		}
	}
	return 0
}

//go:wasmexport compact_v1_finish
func finish() uint32 {
	binary.LittleEndian.PutUint64(out[:], sum)
	return emit(1, ptr(out[:]), 8)
}

func main() {}
