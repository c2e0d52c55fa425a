// Package bm25stats computes, reads and writes Milvus BM25 stats logs: the
// binary objects under bm25_stats/{coll}/{part}/{seg}/{field}/{logID} that
// hold, for the sparse output field of a BM25 function, a segment's row count,
// its total token count and, per token ID, how many rows contain the token
// (Milvus internal/storage BM25Stats). Query nodes derive BM25's IDF and
// average document length from them.
//
// A stats log is not a binlog. Its layout, all little-endian:
//
//	int32  version (0)
//	int64  rows
//	int64  tokens: the sum over rows and entries of int64(term frequency)
//	then, until the end: uint32 token ID, int32 rows containing the token
//
// Milvus writes the entries in map order, so readers must not rely on any
// order; Encode writes them by ascending token ID so the same stats always
// give the same bytes. Stats of one field may span several files, which
// merge by summing (Merge).
package bm25stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
)

// Stats is the BM25 statistics of one sparse field over a set of rows. The
// zero value is not usable; start from New or Decode.
type Stats struct {
	rows   int64
	tokens int64
	counts map[uint32]int32 // token ID -> rows containing it
}

// New returns empty stats.
func New() *Stats { return &Stats{counts: map[uint32]int32{}} }

// NumRows returns the number of rows the stats cover.
func (s *Stats) NumRows() int64 { return s.rows }

// NumTokens returns the total token count: per row, the sum of its term
// frequencies each truncated to an integer.
func (s *Stats) NumTokens() int64 { return s.tokens }

// RowsWithToken returns how many rows contain token id (0 for an unknown one).
func (s *Stats) RowsWithToken(id uint32) int32 { return s.counts[id] }

// Len returns the number of distinct tokens.
func (s *Stats) Len() int { return len(s.counts) }

// Tokens yields every token ID and its row count, by ascending token ID.
func (s *Stats) Tokens() iter.Seq2[uint32, int32] {
	return func(yield func(uint32, int32) bool) {
		for _, id := range slices.Sorted(maps.Keys(s.counts)) {
			if !yield(id, s.counts[id]) {
				return
			}
		}
	}
}

// Equal reports whether s and o hold the same rows, tokens and row counts.
func (s *Stats) Equal(o *Stats) bool {
	return s.rows == o.rows && s.tokens == o.tokens && maps.Equal(s.counts, o.counts)
}

// maxTF is the first term frequency whose int64 conversion Go leaves to the
// platform (2^63); every finite value below it truncates the same everywhere.
const maxTF = float32(1 << 63)

// AppendRow adds one row of the field: a SparseFloatVector value as binlogs
// and Arrow columns store it, pairs of little-endian uint32 token ID and
// float32 term frequency. Each pair adds one to its token's row count and
// int64(frequency) to the token total, as Milvus's BM25Stats.AppendBytes
// does. The row must be what Milvus accepts as a sparse vector
// (typeutil.ValidateSparseFloatRows): IDs strictly ascending and below
// 2^32-1, frequencies finite and not negative; otherwise AppendRow returns an
// error naming the pair and leaves s unchanged. An empty row counts as a row
// without tokens.
func (s *Stats) AppendRow(row []byte) error {
	if len(row)%8 != 0 {
		return fmt.Errorf("bm25stats: sparse row of %d bytes is not a whole number of 8-byte (token, frequency) pairs", len(row))
	}
	if s.rows == math.MaxInt64 {
		return errors.New("bm25stats: row count overflows int64")
	}
	le := binary.LittleEndian
	tokens := s.tokens
	for i := 0; i < len(row); i += 8 {
		id, tf := le.Uint32(row[i:]), math.Float32frombits(le.Uint32(row[i+4:]))
		switch {
		case id == math.MaxUint32:
			return fmt.Errorf("bm25stats: sparse row pair %d: token ID %d is reserved (2^32-1)", i/8, id)
		case i > 0 && id <= le.Uint32(row[i-8:]):
			return fmt.Errorf("bm25stats: sparse row pair %d: token ID %d does not follow %d in ascending order (unsorted or repeated token)",
				i/8, id, le.Uint32(row[i-8:]))
		case tf != tf || tf < 0 || tf >= maxTF: // NaN, negative, +Inf or too large for int64
			return fmt.Errorf("bm25stats: sparse row pair %d: token %d has frequency %g, want a finite value in [0, 2^63)", i/8, id, tf)
		case s.counts[id] == math.MaxInt32:
			return fmt.Errorf("bm25stats: token %d is in more than 2^31-1 rows", id)
		}
		tf64 := int64(tf)
		if tokens > math.MaxInt64-tf64 {
			return errors.New("bm25stats: token total overflows int64")
		}
		tokens += tf64
	}
	for i := 0; i < len(row); i += 8 {
		s.counts[le.Uint32(row[i:])]++
	}
	s.rows++
	s.tokens = tokens
	return nil
}

// Merge adds o into s: rows, tokens and every token's row count are summed,
// as Milvus merges the stats files of one field. On overflow it returns an
// error and leaves s unchanged.
func (s *Stats) Merge(o *Stats) error {
	if o.rows > math.MaxInt64-s.rows || o.tokens > math.MaxInt64-s.tokens {
		return fmt.Errorf("bm25stats: merging %d rows and %d tokens into %d rows and %d tokens overflows int64",
			o.rows, o.tokens, s.rows, s.tokens)
	}
	for id, n := range o.counts {
		if int64(s.counts[id])+int64(n) > math.MaxInt32 {
			return fmt.Errorf("bm25stats: merged row count of token %d exceeds 2^31-1", id)
		}
	}
	for id, n := range o.counts {
		s.counts[id] += n
	}
	s.rows += o.rows
	s.tokens += o.tokens
	return nil
}
