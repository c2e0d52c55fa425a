// Package statslog reads and writes Milvus primary-key stats logs: the JSON
// objects under stats_log/{coll}/{part}/{seg}/{pkField}/{logID} that hold a
// segment's pk range and bloom filter (Milvus internal/storage PrimaryKeyStats).
//
// A stats log is raw JSON, not a binlog. A file whose log ID is "1" (Milvus's
// CompoundStatsType) holds a JSON array of stats objects; any other file holds one
// object. Writers here produce what Milvus 2.4+ writes: a blocked bloom filter
// (github.com/greatroar/blobloom as forked by milvus-io, XXH3-64 seed 0 of the pk
// bytes, sized by blobloom.Optimize at FPR 0.001). Readers also accept the legacy
// bits-and-blooms BasicBF and the binary "mpkstats" format of newer Milvus. Unlike
// Milvus, which falls back to an always-true filter when a filter body is unusable,
// they refuse such an object.
//
// Primary keys are Int64 or VarChar (schemapb.DataType 5 or 21). An Int64 pk is
// hashed as its 8-byte little-endian two's-complement encoding, a VarChar pk as its
// raw bytes. Hot-path lookups use the typed methods MayContainInt64 and
// MayContainVarChar; PK is the value type for range bounds.
package statslog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/zeebo/xxh3"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// CompoundLogID is the file name (log ID) of a compound stats log, which holds a
// JSON array of stats and, when present, is the only stats file a loader reads.
const CompoundLogID = "1"

// PK is one primary-key value: Int for Int64 keys, Str for VarChar keys. Which
// field is meaningful is decided by the owning Stats' PKType.
type PK struct {
	Int int64
	Str string
}

// Stats is one PrimaryKeyStats object.
type Stats struct {
	FieldID int64
	// PKType is schemapb.DataType_Int64 or schemapb.DataType_VarChar.
	PKType schemapb.DataType
	// Min and Max bound the segment's pks (inclusive) when HasRange is set. A
	// decoded object without bounds has no range; lookups then rely on the filter
	// alone. An Int64 Stats without range is encoded as the full int64 range; a
	// VarChar one cannot be encoded (Milvus would read its bounds as "").
	Min, Max PK
	HasRange bool
	// Filter is the bloom filter; never nil in decoded or built stats.
	Filter Filter
}

// Int64Key returns the bytes Milvus hashes for an Int64 pk.
func Int64Key(pk int64) [8]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(pk))
	return b
}

// MayContainInt64 is the L0 hit rule for an Int64 pk: the filter reports the key
// and Min <= pk <= Max. It returns false for VarChar stats.
func (s *Stats) MayContainInt64(pk int64) bool {
	if s.PKType != schemapb.DataType_Int64 {
		return false
	}
	if s.HasRange && (pk < s.Min.Int || pk > s.Max.Int) {
		return false
	}
	k := Int64Key(pk)
	if b, ok := s.Filter.(blocked); ok { // concrete call keeps k on the stack
		return b.f.Has(xxh3.Hash(k[:]))
	}
	return s.Filter.Test(bytes.Clone(k[:]))
}

// MayContainVarChar is the L0 hit rule for a VarChar pk (byte-wise string order).
// It returns false for Int64 stats.
func (s *Stats) MayContainVarChar(pk string) bool {
	if s.PKType != schemapb.DataType_VarChar {
		return false
	}
	if s.HasRange && (pk < s.Min.Str || pk > s.Max.Str) {
		return false
	}
	return s.Filter.TestString(pk)
}

// MayContain dispatches to MayContainInt64 or MayContainVarChar by s.PKType.
func (s *Stats) MayContain(pk PK) bool {
	if s.PKType == schemapb.DataType_VarChar {
		return s.MayContainVarChar(pk.Str)
	}
	return s.MayContainInt64(pk.Int)
}

// SelectKeys returns the stats log keys a loader should read from one segment's
// list: only the compound file when one is present, otherwise all of them.
func SelectKeys(keys []string) []string {
	for _, k := range keys {
		if path.Base(k) == CompoundLogID {
			return []string{k}
		}
	}
	return keys
}

// wireStats is the JSON shape, fields in Milvus's order. Max/Min are the legacy
// Int64 bounds; the real bounds go there too, since Milvus reads them for Int64.
type wireStats struct {
	FieldID int64  `json:"fieldID"`
	Max     int64  `json:"max"`
	Min     int64  `json:"min"`
	BFType  BFType `json:"bfType"`
	BF      Filter `json:"bf"`
	PkType  int64  `json:"pkType"`
	MaxPk   any    `json:"maxPk"`
	MinPk   any    `json:"minPk"`
}

func toWire(s *Stats) (*wireStats, error) {
	if s == nil {
		return nil, errors.New("nil stats")
	}
	if s.Filter == nil {
		return nil, fmt.Errorf("field %d: nil filter", s.FieldID)
	}
	if _, ok := s.Filter.(json.Marshaler); !ok {
		return nil, fmt.Errorf("field %d: filter %T cannot be serialized", s.FieldID, s.Filter)
	}
	w := &wireStats{FieldID: s.FieldID, BFType: s.Filter.Type(), BF: s.Filter, PkType: int64(s.PKType)}
	switch s.PKType {
	case schemapb.DataType_Int64:
		// Milvus requires max/min for Int64; "no range" is written as the full range.
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if s.HasRange {
			lo, hi = s.Min.Int, s.Max.Int
		}
		w.Max, w.Min, w.MaxPk, w.MinPk = hi, lo, hi, lo
	case schemapb.DataType_VarChar:
		// Milvus reads absent VarChar bounds as "", which would hide every pk
		// but "" from its L0 hit rule; there is no way to write "unbounded".
		if !s.HasRange {
			return nil, fmt.Errorf("field %d: VarChar stats without a pk range (no pk added?)", s.FieldID)
		}
		w.MaxPk, w.MinPk = s.Max.Str, s.Min.Str
	default:
		return nil, fmt.Errorf("field %d: pk type %v is neither Int64 nor VarChar", s.FieldID, s.PKType)
	}
	return w, nil
}

// Encode serializes one stats object, as Milvus writes a per-flush stats file.
func Encode(s *Stats) ([]byte, error) {
	w, err := toWire(s)
	if err != nil {
		return nil, fmt.Errorf("statslog: encode: %w", err)
	}
	return json.Marshal(w)
}

// EncodeList serializes a compound stats file (log ID "1"): a JSON array.
func EncodeList(list []*Stats) ([]byte, error) {
	ws := make([]*wireStats, len(list))
	for i, s := range list {
		w, err := toWire(s)
		if err != nil {
			return nil, fmt.Errorf("statslog: encode stats[%d]: %w", i, err)
		}
		ws[i] = w
	}
	return json.Marshal(ws)
}

// Decode parses the stats log stored under key. A key whose last element is "1"
// must hold a JSON array; any other key one JSON object. Data starting with
// BinaryMagic is the binary format of newer Milvus, whatever the key. Empty data yields no
// stats (Milvus skips empty blobs). Errors name the key, the array index and the
// JSON key at fault, and match corrupt.Err. A bloom filter that does not
// decode to what its own fields state is such an error; only a filter the
// object declares always-true (bfType 1 or 2) reads as an AlwaysTrueFilter.
func Decode(key string, data []byte) ([]*Stats, error) {
	list, err := decode(key, data)
	return list, corrupt.Mark(err)
}

func decode(key string, data []byte) ([]*Stats, error) {
	if bytes.HasPrefix(data, []byte(BinaryMagic)) {
		list, err := decodeBinary(data)
		if err != nil {
			return nil, fmt.Errorf("statslog %s: %w", key, err)
		}
		return list, nil
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if path.Base(key) == CompoundLogID {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("statslog %s: compound stats file is not a JSON array: %w", key, err)
		}
		out := make([]*Stats, 0, len(raws))
		for i, raw := range raws {
			s, err := decodeOne(raw)
			if err != nil {
				return nil, fmt.Errorf("statslog %s: stats[%d]: %w", key, i, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := decodeOne(trimmed)
	if err != nil {
		return nil, fmt.Errorf("statslog %s: %w", key, err)
	}
	return []*Stats{s}, nil
}

// field returns the raw value of name, treating JSON null as absent (Milvus does).
func field(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	v, ok := m[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

func unmarshalKey(m map[string]json.RawMessage, name string, dst any) (bool, error) {
	raw, ok := field(m, name)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return true, fmt.Errorf("key %q: %s is not a %T", name, clip(raw), dst)
	}
	return true, nil
}

// clip shows the start of an unusable value; non-UTF-8 or control bytes are escaped so an error
// line stays one readable line.
func clip(raw json.RawMessage) string {
	s, more := string(raw), ""
	if len(raw) > 40 {
		s, more = string(raw[:40]), "..."
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.QuoteToASCII(s) + more
	}
	return s + more
}

func decodeOne(raw json.RawMessage) (*Stats, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("not a JSON object: %s", clip(raw))
	}
	s := &Stats{}
	if ok, err := unmarshalKey(m, "fieldID", &s.FieldID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New(`key "fieldID" missing`)
	}

	var pkType int64
	if _, err := unmarshalKey(m, "pkType", &pkType); err != nil {
		return nil, err
	}
	if pkType <= 0 {
		pkType = int64(schemapb.DataType_Int64)
	}
	s.PKType = schemapb.DataType(pkType)

	switch s.PKType {
	case schemapb.DataType_Int64:
		if err := decodeInt64Range(m, s); err != nil {
			return nil, err
		}
	case schemapb.DataType_VarChar:
		hasMax, err := unmarshalKey(m, "maxPk", &s.Max.Str)
		if err != nil {
			return nil, err
		}
		hasMin, err := unmarshalKey(m, "minPk", &s.Min.Str)
		if err != nil {
			return nil, err
		}
		s.HasRange = hasMax && hasMin
	default:
		return nil, fmt.Errorf(`key "pkType": %d is neither Int64 (5) nor VarChar (21)`, pkType)
	}

	bfType := BasicBF
	if _, err := unmarshalKey(m, "bfType", &bfType); err != nil {
		return nil, err
	}
	bf, _ := field(m, "bf")
	f, err := decodeFilter(bfType, bf)
	if err != nil {
		return nil, err
	}
	s.Filter = f
	return s, nil
}

// decodeInt64Range reads the Int64 bounds: the legacy "max"/"min", overridden by
// "maxPk"/"minPk" when present (Milvus's order). A bound missing from both pairs
// leaves that side open.
func decodeInt64Range(m map[string]json.RawMessage, s *Stats) error {
	s.Min.Int, s.Max.Int = math.MinInt64, math.MaxInt64
	var hasMax, hasMin bool
	for _, k := range []struct {
		name string
		dst  *int64
		has  *bool
	}{
		{"max", &s.Max.Int, &hasMax}, {"maxPk", &s.Max.Int, &hasMax},
		{"min", &s.Min.Int, &hasMin}, {"minPk", &s.Min.Int, &hasMin},
	} {
		ok, err := unmarshalKey(m, k.name, k.dst)
		if err != nil {
			return err
		}
		*k.has = *k.has || ok
	}
	s.HasRange = true
	if !hasMax && !hasMin {
		s.HasRange = false
		s.Min.Int, s.Max.Int = 0, 0
	}
	return nil
}
