// Package pkey holds what the bundled strategies share about primary keys:
// zero-copy views of a batch's key column as Go values, an arena that keeps
// string keys past the call that delivered them, and slice growth that
// checks the task's memory grant first.
package pkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
)

// Key is the Go type of a primary key: int64 for pk_type "int64", string
// for pk_type "string".
type Key interface{ int64 | string }

// View returns the values of the int64 or string column c as []K. For
// int64 keys it is the column's zero-copy view; for string keys it fills
// scratch (reused when large enough) with strings that alias the batch
// buffer. Either way the result is valid only during the call that received
// the batch: keep values with Arena.Keep. It panics when K does not match
// the column type (callers check the type against the task first).
func View[K Key](c *abi.Column, scratch []K) []K {
	switch p := any(&scratch).(type) {
	case *[]int64:
		*p = c.Int64s()
	case *[]string:
		*p = strings(c, *p)
	}
	return scratch
}

func strings(c *abi.Column, dst []string) []string {
	if c.Type != abi.TypeString {
		panic(fmt.Sprintf("pkey: column of field %d is %s, not string", c.FieldID, c.Type))
	}
	n := c.Len()
	if cap(dst) < n {
		dst = make([]string, n)
	}
	dst = dst[:n]
	vals, offs := c.Raw(), c.Offsets()
	lo := binary.LittleEndian.Uint32(offs)
	for i := range n {
		hi := binary.LittleEndian.Uint32(offs[4*i+4:])
		if hi > lo {
			dst[i] = unsafe.String(&vals[lo], hi-lo)
		} else {
			dst[i] = ""
		}
		lo = hi
	}
	return dst
}

// ArenaChunk is the size of the blocks an Arena allocates.
const ArenaChunk = 64 << 10

// Arena copies string keys into large blocks so that keeping a key costs
// no allocation of its own. A block lives as long as any key in it is
// referenced. The zero value is ready to use.
type Arena struct {
	buf []byte
	// Bytes counts the key bytes kept so far.
	Bytes uint64
}

// Keep returns a copy of s that stays valid after the batch it came from
// is gone. Int64 keys are returned unchanged.
func Keep[K Key](a *Arena, k K) (K, error) {
	if p, ok := any(&k).(*string); ok {
		s, err := a.keep(*p)
		*p = s
		return k, err
	}
	return k, nil
}

func (a *Arena) keep(s string) (string, error) {
	if len(s) == 0 {
		return "", nil
	}
	if len(s) > cap(a.buf)-len(a.buf) {
		size := max(ArenaChunk, len(s))
		if err := CheckMemory(uint64(size), "string key arena"); err != nil {
			return "", err
		}
		a.buf = make([]byte, 0, size)
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	a.Bytes += uint64(len(s))
	return unsafe.String(&a.buf[start], len(s)), nil
}

// CheckMemory asks the SDK whether n more bytes fit in the task's memory
// grant and, if not, returns an OUT_OF_MEMORY error that says what the
// bytes were for.
func CheckMemory(n uint64, what string) error {
	err := sdk.CheckMemory(n)
	if err == nil {
		return nil
	}
	var ae *abi.Error
	if errors.As(err, &ae) {
		return abi.Errorf(ae.Status, "%s: %s", what, ae.Message)
	}
	return abi.Errorf(abi.StatusOutOfMemory, "%s: %v", what, err)
}

// Grow returns s with room for at least n more elements, doubling its
// capacity and checking the memory grant before it allocates.
func Grow[T any](s []T, n int, what string) ([]T, error) {
	if cap(s)-len(s) >= n {
		return s, nil
	}
	newCap := max(2*cap(s), len(s)+n, 64)
	var zero T
	if err := CheckMemory(uint64(newCap)*uint64(unsafe.Sizeof(zero)), what); err != nil {
		return s, err
	}
	ns := make([]T, len(s), newCap)
	copy(ns, s)
	return ns, nil
}

// Hash mixes a key into 64 well-spread bits (Fibonacci hashing for int64,
// FNV-1a then Fibonacci for strings); use the high bits.
func Hash[K Key](k K) uint64 {
	var h uint64
	switch v := any(k).(type) {
	case int64:
		h = uint64(v)
	case string:
		h = 14695981039346656037
		for i := 0; i < len(v); i++ {
			h = (h ^ uint64(v[i])) * 1099511628211
		}
	}
	return h * 0x9E3779B97F4A7C15
}

// Less orders (key, segment) pairs: by key, ties by segment index.
func Less[K Key](a K, sa uint32, b K, sb uint32) bool {
	return a < b || a == b && sa < sb
}
