package abi

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// littleEndian is true on every platform the host and guests run on (amd64,
// arm64, wasm); typed views reinterpret the little-endian wire bytes in
// place only when it holds and decode a copy otherwise.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Len returns the number of rows.
func (c *Column) Len() int { return c.rows }

// HasNulls reports whether the column carries a validity bitmap.
func (c *Column) HasNulls() bool { return c.validity != nil }

// IsNull reports whether row i is null.
func (c *Column) IsNull(i int) bool {
	return c.validity != nil && c.validity[i>>3]&(1<<(i&7)) == 0
}

// Validity returns the raw LSB-first validity bitmap, or nil if every row
// is valid.
func (c *Column) Validity() []byte { return c.validity }

// Raw returns the values region as bytes.
func (c *Column) Raw() []byte { return c.values }

func (c *Column) mustBe(t Type) {
	if c.Type != t {
		panic(fmt.Sprintf("abi: column of field %d is %s, not %s", c.FieldID, c.Type, t))
	}
}

// view reinterprets the values region as []T without copying.
func view[T any](c *Column, t Type, get func([]byte) T) []T {
	c.mustBe(t)
	if c.rows == 0 {
		return []T{}
	}
	if littleEndian {
		return unsafe.Slice((*T)(unsafe.Pointer(&c.values[0])), c.rows)
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	out := make([]T, c.rows)
	for i := range out {
		out[i] = get(c.values[i*size:])
	}
	return out
}

var le = binary.LittleEndian

// Typed views. Each panics if the column has a different type: the column
// types are announced in the task (Task.Columns), so a mismatch is a bug in
// the strategy, and the SDK turns the panic into StatusError with this text as the fail message.
// Null rows hold zero values.

// Int64s views an int64 column.
func (c *Column) Int64s() []int64 {
	return view(c, TypeInt64, func(b []byte) int64 { return int64(le.Uint64(b)) })
}

// Int32s views an int32 column.
func (c *Column) Int32s() []int32 {
	return view(c, TypeInt32, func(b []byte) int32 { return int32(le.Uint32(b)) })
}

// Int16s views an int16 column.
func (c *Column) Int16s() []int16 {
	return view(c, TypeInt16, func(b []byte) int16 { return int16(le.Uint16(b)) })
}

// Int8s views an int8 column.
func (c *Column) Int8s() []int8 {
	return view(c, TypeInt8, func(b []byte) int8 { return int8(b[0]) })
}

// Uint32s views a uint32 column (the row-size column).
func (c *Column) Uint32s() []uint32 {
	return view(c, TypeUint32, func(b []byte) uint32 { return le.Uint32(b) })
}

// Float32s views a float32 column.
func (c *Column) Float32s() []float32 {
	return view(c, TypeFloat32, func(b []byte) float32 {
		v := le.Uint32(b)
		return *(*float32)(unsafe.Pointer(&v))
	})
}

// Float64s views a float64 column.
func (c *Column) Float64s() []float64 {
	return view(c, TypeFloat64, func(b []byte) float64 {
		v := le.Uint64(b)
		return *(*float64)(unsafe.Pointer(&v))
	})
}

// Bools views a bool column (the decoder has checked every byte is 0 or 1).
func (c *Column) Bools() []bool {
	return view(c, TypeBool, func(b []byte) bool { return b[0] == 1 })
}

// Bytes returns row i of a string, binary or fixed column without copying.
func (c *Column) Bytes(i int) []byte {
	switch {
	case c.Type.VarLen():
		lo, hi := le.Uint32(c.offsets[i*4:]), le.Uint32(c.offsets[i*4+4:])
		return c.values[lo:hi:hi]
	case c.Type == TypeFixed:
		if i < 0 || i >= c.rows {
			panic(fmt.Sprintf("abi: row %d out of range [0, %d) in field %d", i, c.rows, c.FieldID))
		}
		return c.values[i*c.Width : (i+1)*c.Width : (i+1)*c.Width]
	}
	panic(fmt.Sprintf("abi: column of field %d is %s, not string, binary or fixed", c.FieldID, c.Type))
}

// String returns row i of a string or binary column as a new string (a copy,
// safe to keep after the call returns).
func (c *Column) String(i int) string {
	if !c.Type.VarLen() {
		panic(fmt.Sprintf("abi: column of field %d is %s, not string or binary", c.FieldID, c.Type))
	}
	return string(c.Bytes(i))
}

// Offsets returns the raw (rows+1) little-endian u32 offsets of a string or
// binary column, or nil for other types.
func (c *Column) Offsets() []byte { return c.offsets }

// Data describes the decoded column as encoder input (sharing its bytes),
// so a batch can be re-encoded or forwarded.
func (c *Column) Data() ColumnData {
	d := ColumnData{FieldID: c.FieldID, Type: c.Type, Width: uint32(c.Width), Nullable: c.Nullable, Values: c.values, Validity: c.validity}
	switch {
	case c.Type.VarLen():
		d.Width = 0
		d.Offsets = make([]int32, c.rows+1)
		for i := range d.Offsets {
			d.Offsets[i] = int32(le.Uint32(c.offsets[i*4:]))
		}
	case c.Type == TypeBool:
		bits := make([]byte, (c.rows+7)/8)
		for i, v := range c.values {
			bits[i>>3] |= v << (i & 7)
		}
		d.Values = bits
	}
	return d
}
