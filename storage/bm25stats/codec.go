package bm25stats

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// Version is the only layout version Milvus writes (BM25VERSION).
const Version int32 = 0

// HeaderSize is the size of the fixed part: version, rows, tokens.
const HeaderSize = 4 + 8 + 8

// EntrySize is the size of one (token ID, row count) entry.
const EntrySize = 4 + 4

// Encode serializes s as Milvus's BM25Stats.Serialize lays it out, entries by
// ascending token ID.
func Encode(s *Stats) []byte {
	le := binary.LittleEndian
	out := make([]byte, 0, HeaderSize+EntrySize*len(s.counts))
	out = le.AppendUint32(out, uint32(Version))
	out = le.AppendUint64(out, uint64(s.rows))
	out = le.AppendUint64(out, uint64(s.tokens))
	for id, n := range s.Tokens() {
		out = le.AppendUint32(out, id)
		out = le.AppendUint32(out, uint32(n))
	}
	return out
}

// Decode parses the BM25 stats log stored under key (the key only names the
// object in errors). Entries may come in any order; a token listed twice has
// its counts summed, as Milvus's Deserialize does. Decode refuses, with an
// error naming the key and the problem that matches corrupt.Err: fewer than
// HeaderSize bytes, a version other than 0, a length that leaves a partial
// entry, negative rows, tokens or row counts, and a token in more rows than
// the file counts.
func Decode(key string, data []byte) (*Stats, error) {
	s, err := decode(data)
	if err != nil {
		return nil, corrupt.Mark(fmt.Errorf("bm25stats %s: %w", key, err))
	}
	return s, nil
}

func decode(data []byte) (*Stats, error) {
	if len(data) < HeaderSize {
		return nil, fmt.Errorf("%d bytes, shorter than the %d-byte header (version, rows, tokens)", len(data), HeaderSize)
	}
	le := binary.LittleEndian
	if v := int32(le.Uint32(data)); v != Version {
		return nil, fmt.Errorf("unsupported version %d (want %d)", v, Version)
	}
	body := data[HeaderSize:]
	if len(body)%EntrySize != 0 {
		return nil, fmt.Errorf("%d bytes after the header is not a whole number of %d-byte entries (%d trailing bytes)",
			len(body), EntrySize, len(body)%EntrySize)
	}
	s := &Stats{rows: int64(le.Uint64(data[4:])), tokens: int64(le.Uint64(data[12:])),
		counts: make(map[uint32]int32, len(body)/EntrySize)}
	if s.rows < 0 || s.tokens < 0 {
		return nil, fmt.Errorf("negative header: %d rows, %d tokens", s.rows, s.tokens)
	}
	for i := 0; i < len(body); i += EntrySize {
		id, n := le.Uint32(body[i:]), int32(le.Uint32(body[i+4:]))
		if n < 0 {
			return nil, fmt.Errorf("entry %d: token %d has negative row count %d", i/EntrySize, id, n)
		}
		// Summed in int64 so that duplicates cannot wrap before the checks.
		sum := int64(s.counts[id]) + int64(n)
		if sum > s.rows {
			return nil, fmt.Errorf("entry %d: token %d is in %d rows, more than the file's %d", i/EntrySize, id, sum, s.rows)
		}
		if sum > math.MaxInt32 {
			return nil, fmt.Errorf("entry %d: token %d is in %d rows, more than 2^31-1", i/EntrySize, id, sum)
		}
		s.counts[id] = int32(sum)
	}
	return s, nil
}
