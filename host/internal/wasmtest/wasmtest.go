// Package wasmtest assembles small WebAssembly modules from hand-written
// instruction bytes. The host's tests use it to build hostile and minimal
// modules (unknown imports, wrong ABI names, bad pointers, endless loops)
// without a toolchain.
//
// It covers only what those tests need: function types with i32/i64
// params/results, function imports, one memory, exported functions and
// memory, active data segments at constant offsets and custom sections.
package wasmtest

import "encoding/binary"

// Value types.
const (
	I32 byte = 0x7f
	I64 byte = 0x7e
)

// Common instruction opcodes used by the tests.
const (
	OpUnreachable byte = 0x00
	OpLoop        byte = 0x03
	OpBr          byte = 0x0c
	OpEnd         byte = 0x0b
	OpDrop        byte = 0x1a
	OpLocalGet    byte = 0x20
	OpCall        byte = 0x10
	OpI32Const    byte = 0x41
	OpI64Const    byte = 0x42
	OpMemoryGrow  byte = 0x40
	OpBrIf        byte = 0x0d
	OpI32Eqz      byte = 0x45
)

// Func is one defined function: its signature and body instructions
// (without the trailing end opcode and without locals, which are added by
// Locals).
type Func struct {
	Params, Results []byte
	Locals          []byte // one entry per extra local
	Body            []byte
}

type importFn struct {
	module, name    string
	params, results []byte
}

type export struct {
	name string
	kind byte
	idx  uint32
}

// Module collects the pieces of a module; Bytes encodes it.
type Module struct {
	imports  []importFn
	funcs    []Func
	exports  []export
	memMin   uint32
	memMax   int64 // -1 = none
	hasMem   bool
	data     []dataSeg
	customs  [][2][]byte
	exported map[string]bool
}

type dataSeg struct {
	off  uint32
	body []byte
}

// New returns an empty module.
func New() *Module { return &Module{memMax: -1, exported: map[string]bool{}} }

// Import adds a function import and returns its function index. Imports
// must be added before any Func.
func (m *Module) Import(module, name string, params, results []byte) uint32 {
	m.imports = append(m.imports, importFn{module, name, params, results})
	return uint32(len(m.imports) - 1)
}

// Func adds a function and returns its index (imports count first).
func (m *Module) Func(f Func) uint32 {
	m.funcs = append(m.funcs, f)
	return uint32(len(m.imports) + len(m.funcs) - 1)
}

// Export exports function idx under name.
func (m *Module) Export(name string, idx uint32) *Module {
	m.exports = append(m.exports, export{name, 0, idx})
	return m
}

// Memory declares the module's memory with min pages and an optional max
// (max < 0 means none) and exports it as "memory".
func (m *Module) Memory(min uint32, max int64) *Module {
	m.hasMem, m.memMin, m.memMax = true, min, max
	m.exports = append(m.exports, export{"memory", 2, 0})
	return m
}

// Data places bytes at a constant offset of memory 0.
func (m *Module) Data(off uint32, b []byte) *Module {
	m.data = append(m.data, dataSeg{off, b})
	return m
}

// Custom appends a custom section (useful to vary a module's sha256).
func (m *Module) Custom(name string, body []byte) *Module {
	m.customs = append(m.customs, [2][]byte{[]byte(name), body})
	return m
}

// Bytes encodes the module.
func (m *Module) Bytes() []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	// Type section: one type per import and per function (duplicates are legal).
	var types [][]byte
	sig := func(p, r []byte) []byte {
		b := []byte{0x60}
		b = append(b, uleb(uint64(len(p)))...)
		b = append(b, p...)
		b = append(b, uleb(uint64(len(r)))...)
		return append(b, r...)
	}
	for _, im := range m.imports {
		types = append(types, sig(im.params, im.results))
	}
	for _, f := range m.funcs {
		types = append(types, sig(f.Params, f.Results))
	}
	out = section(out, 1, vec(types))
	if len(m.imports) > 0 {
		var items [][]byte
		for i, im := range m.imports {
			b := name(im.module)
			b = append(b, name(im.name)...)
			b = append(b, 0x00)
			b = append(b, uleb(uint64(i))...)
			items = append(items, b)
		}
		out = section(out, 2, vec(items))
	}
	if len(m.funcs) > 0 {
		var items [][]byte
		for i := range m.funcs {
			items = append(items, uleb(uint64(len(m.imports)+i)))
		}
		out = section(out, 3, vec(items))
	}
	if m.hasMem {
		lim := []byte{0x00}
		lim = append(lim, uleb(uint64(m.memMin))...)
		if m.memMax >= 0 {
			lim = []byte{0x01}
			lim = append(lim, uleb(uint64(m.memMin))...)
			lim = append(lim, uleb(uint64(m.memMax))...)
		}
		out = section(out, 5, vec([][]byte{lim}))
	}
	if len(m.exports) > 0 {
		var items [][]byte
		for _, e := range m.exports {
			b := name(e.name)
			b = append(b, e.kind)
			items = append(items, append(b, uleb(uint64(e.idx))...))
		}
		out = section(out, 7, vec(items))
	}
	if len(m.funcs) > 0 {
		var items [][]byte
		for _, f := range m.funcs {
			var body []byte
			if len(f.Locals) == 0 {
				body = append(body, 0x00)
			} else {
				body = append(body, uleb(uint64(len(f.Locals)))...)
				for _, l := range f.Locals {
					body = append(body, 0x01, l)
				}
			}
			body = append(body, f.Body...)
			body = append(body, OpEnd)
			items = append(items, append(uleb(uint64(len(body))), body...))
		}
		out = section(out, 10, vec(items))
	}
	if len(m.data) > 0 {
		var items [][]byte
		for _, d := range m.data {
			b := []byte{0x00, OpI32Const}
			b = append(b, sleb(int64(d.off))...)
			b = append(b, OpEnd)
			b = append(b, uleb(uint64(len(d.body)))...)
			items = append(items, append(b, d.body...))
		}
		out = section(out, 11, vec(items))
	}
	for _, c := range m.customs {
		body := name(string(c[0]))
		out = section(out, 0, append(body, c[1]...))
	}
	return out
}

// I32Const encodes "i32.const v".
func I32Const(v int32) []byte { return append([]byte{OpI32Const}, sleb(int64(v))...) }

// I64Const encodes "i64.const v".
func I64Const(v int64) []byte { return append([]byte{OpI64Const}, sleb(v)...) }

// Call encodes "call idx".
func Call(idx uint32) []byte { return append([]byte{OpCall}, uleb(uint64(idx))...) }

// LocalGet encodes "local.get i".
func LocalGet(i uint32) []byte { return append([]byte{OpLocalGet}, uleb(uint64(i))...) }

// Seq concatenates instruction fragments.
func Seq(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Loop returns "loop body br 0 end": an endless loop around body.
func Loop(body []byte) []byte {
	return Seq([]byte{OpLoop, 0x40}, body, []byte{OpBr, 0x00, OpEnd})
}

// PackPtrLen returns ptr<<32|len as an int64 constant, the ABI's manifest return.
func PackPtrLen(ptr, n uint32) int64 { return int64(uint64(ptr)<<32 | uint64(n)) }

func section(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = append(out, uleb(uint64(len(body)))...)
	return append(out, body...)
}

func vec(items [][]byte) []byte {
	out := uleb(uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}
