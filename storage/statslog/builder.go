package statslog

import (
	"cmp"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/zeebo/xxh3"
)

// Builder accumulates one segment's pks into a Stats with a blocked bloom filter,
// as Milvus does when it writes a segment's stats log. Not safe for concurrent use.
type Builder struct {
	s   Stats
	f   blocked
	err error
}

// NewBuilder returns a builder for pk field fieldID of type pkType (Int64 or
// VarChar) whose filter is sized for capacity keys at DefaultFPR; Milvus uses the
// segment's row count. A capacity below 1 is treated as 1.
func NewBuilder(fieldID int64, pkType schemapb.DataType, capacity int) (*Builder, error) {
	return NewBuilderFPR(fieldID, pkType, capacity, DefaultFPR)
}

// NewBuilderFPR is NewBuilder with an explicit false-positive rate in (0, 1].
func NewBuilderFPR(fieldID int64, pkType schemapb.DataType, capacity int, fpr float64) (*Builder, error) {
	if pkType != schemapb.DataType_Int64 && pkType != schemapb.DataType_VarChar {
		return nil, fmt.Errorf("statslog: field %d: pk type %v is neither Int64 nor VarChar", fieldID, pkType)
	}
	if !(fpr > 0 && fpr <= 1) {
		return nil, fmt.Errorf("statslog: field %d: false-positive rate %v not in (0, 1]", fieldID, fpr)
	}
	f := newBlocked(uint64(max(capacity, 1)), fpr)
	return &Builder{s: Stats{FieldID: fieldID, PKType: pkType, Filter: f}, f: f}, nil
}

// AddInt64 adds an Int64 pk. On a VarChar builder it records an error for Finish.
func (b *Builder) AddInt64(pk int64) {
	if b.s.PKType != schemapb.DataType_Int64 {
		b.mismatch("Int64")
		return
	}
	widen(&b.s.Min.Int, &b.s.Max.Int, &b.s.HasRange, pk)
	k := Int64Key(pk)
	b.f.f.Add(xxh3.Hash(k[:]))
}

// AddVarChar adds a VarChar pk. On an Int64 builder it records an error for Finish.
func (b *Builder) AddVarChar(pk string) {
	if b.s.PKType != schemapb.DataType_VarChar {
		b.mismatch("VarChar")
		return
	}
	widen(&b.s.Min.Str, &b.s.Max.Str, &b.s.HasRange, pk)
	b.f.f.Add(xxh3.HashString(pk))
}

// widen stretches the range [*lo, *hi] to take in pk; *has says whether the
// range holds any pk yet, and is set.
func widen[T cmp.Ordered](lo, hi *T, has *bool, pk T) {
	if !*has || pk < *lo {
		*lo = pk
	}
	if !*has || pk > *hi {
		*hi = pk
	}
	*has = true
}

func (b *Builder) mismatch(got string) {
	if b.err == nil {
		b.err = fmt.Errorf("statslog: field %d: %s pk added to %v stats", b.s.FieldID, got, b.s.PKType)
	}
}

// Finish returns the stats built so far, or the first misuse error. The returned
// Stats shares the filter with the builder; stop adding once it is encoded.
func (b *Builder) Finish() (*Stats, error) {
	if b.err != nil {
		return nil, b.err
	}
	s := b.s
	return &s, nil
}
