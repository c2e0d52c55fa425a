package abi

import (
	"encoding/binary"
	"unsafe"
)

// Helpers that describe plain Go slices as ColumnData without copying (on
// little-endian machines), for the row-size column, tests and native drivers.
// Host columns held as Arrow arrays go through package abi/abiarrow.

func leBytes[T int64 | uint32 | int32](v []T, put func([]byte, T)) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	size := int(unsafe.Sizeof(v[0]))
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*size)
	}
	out := make([]byte, len(v)*size)
	for i, x := range v {
		put(out[i*size:], x)
	}
	return out
}

// Int64Data describes an int64 column.
func Int64Data(fieldID int64, v []int64) ColumnData {
	return ColumnData{FieldID: fieldID, Type: TypeInt64,
		Values: leBytes(v, func(b []byte, x int64) { binary.LittleEndian.PutUint64(b, uint64(x)) })}
}

// Uint32Data describes a uint32 column.
func Uint32Data(fieldID int64, v []uint32) ColumnData {
	return ColumnData{FieldID: fieldID, Type: TypeUint32,
		Values: leBytes(v, func(b []byte, x uint32) { binary.LittleEndian.PutUint32(b, x) })}
}

// RowSizeData describes the synthetic row-size column (field -1).
func RowSizeData(sizes []uint32) ColumnData { return Uint32Data(FieldIDRowSize, sizes) }

// StringData describes a string column; it copies the strings into one
// buffer.
func StringData(fieldID int64, v []string) ColumnData {
	offs := make([]int32, len(v)+1)
	n := 0
	for i, s := range v {
		n += len(s)
		offs[i+1] = int32(n)
	}
	vals := make([]byte, 0, n)
	for _, s := range v {
		vals = append(vals, s...)
	}
	return ColumnData{FieldID: fieldID, Type: TypeString, Values: vals, Offsets: offs}
}
