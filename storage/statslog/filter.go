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
	// filter body cannot be parsed; this package refuses such a body instead.
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
// object got it (bfType 1 or 2), for logging.
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

// decodeFilter turns the "bf" value (nil when absent) into a Filter.
// bfType 2 (AlwaysTrue) and 1 (Milvus's marker for an unknown kind, which it
// writes over a blocked body when misconfigured) read as an AlwaysTrueFilter
// whatever the body. A BlockedBF or BasicBF body that does not decode to the
// filter its own fields describe is an error: Milvus logs it and answers
// "maybe" for every key, which hides a damaged object and makes L0 route
// deletes to segments that do not hold them.
func decodeFilter(t BFType, raw json.RawMessage) (Filter, error) {
	var (
		f   Filter
		err error
	)
	switch t {
	case AlwaysTrue, Unsupported:
		return AlwaysTrueFilter{Reason: fmt.Sprintf("bfType %d (%s)", int(t), t)}, nil
	case BlockedBF, BasicBF:
		if raw == nil {
			return nil, fmt.Errorf(`key "bf" missing for bfType %d (%s)`, int(t), t)
		}
	default:
		return nil, fmt.Errorf(`key "bfType": %d is not a bloom filter type (2, 3 or 4)`, int(t))
	}
	if t == BlockedBF {
		f, err = decodeBlocked(raw)
	} else {
		f, err = decodeBasic(raw)
	}
	if err != nil {
		return nil, fmt.Errorf(`key "bf": %s body: %v`, t, err)
	}
	return f, nil
}

// strictB64 is the alphabet Milvus's filters are written in. Strict decoding
// also refuses non-zero padding bits, so a changed last character before the
// padding is caught too.
var strictB64 = base64.URLEncoding.Strict()

// decodeBlocked reads the {"k":..,"b":[block...]} body. It decodes the
// blocks itself and builds the filter from their bytes: blobloom's
// UnmarshalJSON ignores errors and, on a body this parser reads differently
// (a duplicate or differently cased key), would leave an empty filter that
// panics on lookup.
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
	if *body.K < 2 || *body.K > maxHashes {
		// blobloom raises a smaller k to 2 and would test bits never set.
		return nil, fmt.Errorf("k = %d out of range 2..%d", *body.K, maxHashes)
	}
	if len(body.B) == 0 {
		return nil, fmt.Errorf("no blocks")
	}
	if uint64(len(body.B)) > blobloom.MaxBits/blobloom.BlockBits {
		return nil, fmt.Errorf("%d blocks exceed blobloom.MaxBits", len(body.B))
	}
	const blockBytes = blobloom.BlockBits / 8
	blocks := make([]byte, len(body.B)*blockBytes)
	for i, s := range body.B {
		if len(s) != strictB64.EncodedLen(blockBytes) {
			return nil, fmt.Errorf("block %d is not %d base64url bytes", i, blockBytes)
		}
		var buf [blockBytes + 2]byte
		n, err := strictB64.Decode(buf[:], []byte(s))
		if err != nil || n != blockBytes {
			return nil, fmt.Errorf("block %d is not %d base64url bytes", i, blockBytes)
		}
		copy(blocks[i*blockBytes:], buf[:n])
	}
	return loadBlocks(blocks, uint32(len(body.B)), uint32(*body.K))
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
	bits, err := strictB64.DecodeString(*body.B)
	if err != nil {
		return nil, fmt.Errorf("bitset: %v", err)
	}
	if len(bits) < 8 {
		return nil, fmt.Errorf("bitset shorter than its 8-byte length")
	}
	// The bitset states its length in bits; its words must be exactly the
	// ones that length needs, and bits-and-blooms sizes it to m.
	length := binary.BigEndian.Uint64(bits)
	if words := uint64(len(bits) - 8); words%8 != 0 || words/8 != length/64+min(length%64, 1) {
		return nil, fmt.Errorf("bitset states %d bits but holds %d bytes of words", length, len(bits)-8)
	}
	if *body.M != length {
		return nil, fmt.Errorf("m = %d but the bitset holds %d bits", *body.M, length)
	}
	set := make([]uint64, (length+63)/64)
	for i := range set {
		set[i] = binary.BigEndian.Uint64(bits[8+8*i:])
	}
	return basic{bloom.FromWithM(set, uint(*body.M), uint(*body.K))}, nil
}
