package statslog

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/greatroar/blobloom"
	"github.com/zeebo/xxh3"
)

// BFType is the bloom filter kind recorded under the stats JSON key "bfType".
// The numeric values are Milvus's (internal/util/bloomfilter).
type BFType int

const (
	// Unsupported is Milvus's marker for an unknown filter kind; it reads as AlwaysTrue.
	Unsupported BFType = 1
	// AlwaysTrue answers "maybe present" for every key. Milvus substitutes it when a
	// filter body cannot be parsed; so do we.
	AlwaysTrue BFType = 2
	// BasicBF is the legacy bits-and-blooms/bloom/v3 filter (read only). A stats
	// object without "bfType" holds this kind.
	BasicBF BFType = 3
	// BlockedBF is the blobloom blocked filter hashed with XXH3-64, Milvus's default
	// since 2.4 and the only kind this package writes.
	BlockedBF BFType = 4
)

// String names the type the way Milvus's configuration does.
func (t BFType) String() string {
	switch t {
	case AlwaysTrue:
		return "AlwaysTrueBloomFilter"
	case BasicBF:
		return "BasicBloomFilter"
	case BlockedBF:
		return "BlockedBloomFilter"
	default:
		return fmt.Sprintf("UnsupportedBloomFilter(%d)", int(t))
	}
}

// DefaultFPR is Milvus's common.maxBloomFalsePositive.
const DefaultFPR = 0.001

// maxHashes bounds k of a decoded filter. blobloom.Optimize gives k = 355 for a
// capacity of one key (one 512-bit block); a larger k is not one Milvus produces,
// and testing it would cost k probes per key.
const maxHashes = 1024

// Filter is a read-only membership test over primary-key bytes (Int64 pk: 8-byte
// little-endian; VarChar pk: raw bytes). It has no false negatives.
type Filter interface {
	// Type reports the filter kind as written under "bfType".
	Type() BFType
	// Test reports whether key may have been added.
	Test(key []byte) bool
	// TestString is Test for a string key, without copying it.
	TestString(key string) bool
}

// blocked is Milvus's BlockedBloomFilter: blobloom over XXH3-64 (seed 0) hashes.
type blocked struct{ f *blobloom.Filter }

func (b blocked) Type() BFType                 { return BlockedBF }
func (b blocked) Test(key []byte) bool         { return b.f.Has(xxh3.Hash(key)) }
func (b blocked) TestString(key string) bool   { return b.f.Has(xxh3.HashString(key)) }
func (b blocked) MarshalJSON() ([]byte, error) { return b.f.MarshalJSON() }

// basic is the legacy bits-and-blooms filter, kept for reading old segments.
type basic struct{ f *bloom.BloomFilter }

func (b basic) Type() BFType                 { return BasicBF }
func (b basic) Test(key []byte) bool         { return b.f.Test(key) }
func (b basic) TestString(key string) bool   { return b.f.TestString(key) }
func (b basic) MarshalJSON() ([]byte, error) { return b.f.MarshalJSON() }

// AlwaysTrueFilter says "maybe" to every key. Reason records why a decoded stats
// object got it (a "bf" body that did not parse, bfType 2, ...), for logging.
type AlwaysTrueFilter struct{ Reason string }

// Type returns AlwaysTrue.
func (AlwaysTrueFilter) Type() BFType { return AlwaysTrue }

// Test returns true.
func (AlwaysTrueFilter) Test([]byte) bool { return true }

// TestString returns true.
func (AlwaysTrueFilter) TestString(string) bool { return true }

// MarshalJSON writes an empty object (Milvus writes an empty body, which is not
// valid JSON; an empty object reads back as AlwaysTrue in Milvus and here).
func (AlwaysTrueFilter) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// newBlocked sizes a blocked filter the way Milvus does: blobloom.Optimize for
// capacity keys at false-positive rate fpr.
func newBlocked(capacity uint64, fpr float64) blocked {
	return blocked{blobloom.NewOptimized(blobloom.Config{Capacity: capacity, FPRate: fpr})}
}

// decodeFilter turns the "bf" value into a Filter. Like Milvus, a body that cannot
// be used yields an AlwaysTrueFilter rather than an error: the filter only prunes
// work, and answering "maybe" is always safe.
func decodeFilter(t BFType, raw json.RawMessage) Filter {
	var (
		f   Filter
		err error
	)
	switch t {
	case BlockedBF:
		f, err = decodeBlocked(raw)
	case BasicBF:
		f, err = decodeBasic(raw)
	case AlwaysTrue:
		return AlwaysTrueFilter{Reason: "bfType 2 (AlwaysTrueBloomFilter)"}
	default:
		return AlwaysTrueFilter{Reason: fmt.Sprintf("unsupported bfType %d", int(t))}
	}
	if err != nil {
		return AlwaysTrueFilter{Reason: fmt.Sprintf("%s body: %v", t, err)}
	}
	return f
}

// decodeBlocked checks the {"k":..,"b":[block...]} body before handing it to
// blobloom, whose UnmarshalJSON ignores errors and would leave an empty filter
// that panics on lookup.
func decodeBlocked(raw json.RawMessage) (Filter, error) {
	var body struct {
		K *uint    `json:"k"`
		B []string `json:"b"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, err
	}
	if body.K == nil {
		return nil, fmt.Errorf("missing k")
	}
	if *body.K > maxHashes {
		return nil, fmt.Errorf("k = %d exceeds %d", *body.K, maxHashes)
	}
	if len(body.B) == 0 {
		return nil, fmt.Errorf("no blocks")
	}
	if uint64(len(body.B)) > blobloom.MaxBits/blobloom.BlockBits {
		return nil, fmt.Errorf("%d blocks exceed blobloom.MaxBits", len(body.B))
	}
	const blockBytes = blobloom.BlockBits / 8
	var buf [blockBytes + 2]byte
	for i, s := range body.B {
		if len(s) != base64.URLEncoding.EncodedLen(blockBytes) {
			return nil, fmt.Errorf("block %d is not %d base64url bytes", i, blockBytes)
		}
		n, err := base64.URLEncoding.Decode(buf[:], []byte(s))
		if err != nil || n != blockBytes {
			return nil, fmt.Errorf("block %d is not %d base64url bytes", i, blockBytes)
		}
	}
	f := new(blobloom.Filter)
	if err := f.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return blocked{f}, nil
}

// decodeBasic reads {"m":..,"k":..,"b":"<base64url bitset>"}; the bitset is a
// big-endian uint64 bit length followed by big-endian uint64 words. It builds the
// bit words itself so a hostile length cannot make bitset allocate unbounded memory.
func decodeBasic(raw json.RawMessage) (Filter, error) {
	var body struct {
		M *uint64 `json:"m"`
		K *uint64 `json:"k"`
		B *string `json:"b"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, err
	}
	switch {
	case body.M == nil || body.K == nil || body.B == nil:
		return nil, fmt.Errorf("needs m, k and b")
	case *body.M == 0:
		return nil, fmt.Errorf("m = 0")
	case *body.K == 0 || *body.K > maxHashes:
		return nil, fmt.Errorf("k = %d out of range 1..%d", *body.K, maxHashes)
	}
	bits, err := base64.URLEncoding.DecodeString(*body.B)
	if err != nil {
		return nil, fmt.Errorf("bitset: %v", err)
	}
	if len(bits) < 8 {
		return nil, fmt.Errorf("bitset shorter than its 8-byte length")
	}
	length := binary.BigEndian.Uint64(bits)
	words := (len(bits) - 8) / 8
	if length > uint64(words)*64 {
		return nil, fmt.Errorf("bitset length %d exceeds its %d words", length, words)
	}
	if *body.M > length {
		return nil, fmt.Errorf("m = %d exceeds bitset length %d", *body.M, length)
	}
	set := make([]uint64, (length+63)/64)
	for i := range set {
		set[i] = binary.BigEndian.Uint64(bits[8+8*i:])
	}
	return basic{bloom.FromWithM(set, uint(*body.M), uint(*body.K))}, nil
}
