// Package tso converts between wall-clock time and Milvus hybrid timestamps: the physical Unix
// milliseconds shifted left by 18 bits, plus an 18-bit logical counter.
package tso

import "time"

// LogicalBits is the width of the logical counter in a hybrid timestamp.
const LogicalBits = 18

const logicalMask = 1<<LogicalBits - 1

// Compose builds a hybrid timestamp from Unix milliseconds and a logical counter.
func Compose(physicalMs int64, logical int64) uint64 {
	return uint64(physicalMs)<<LogicalBits | uint64(logical)&logicalMask
}

// FromTime is Compose(t in Unix milliseconds, 0).
func FromTime(t time.Time) uint64 { return Compose(t.UnixMilli(), 0) }

// Physical returns the Unix milliseconds of a hybrid timestamp.
func Physical(ts uint64) int64 { return int64(ts >> LogicalBits) }

// Logical returns the logical counter of a hybrid timestamp.
func Logical(ts uint64) int64 { return int64(ts & logicalMask) }

// Time returns the wall-clock time of a hybrid timestamp, in UTC.
func Time(ts uint64) time.Time { return time.UnixMilli(Physical(ts)).UTC() }

// Valid reports whether ts looks like a hybrid timestamp Milvus would issue: its physical part
// lies between 2019-01-01 and the end of year 9999.
func Valid(ts uint64) bool {
	p := Physical(ts)
	return p >= 1546300800000 && p <= 253402300799000
}

// Expired applies Milvus's collection-TTL rule: a row written at rowTS is expired at nowMs when
// ttl > 0 and its age is at least the TTL (equality counts as expired).
func Expired(rowTS uint64, nowMs int64, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	return ttl.Milliseconds() <= nowMs-Physical(rowTS)
}
