package bm25stats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// sparse builds a SparseFloatVector row from (token, frequency) pairs, in the given order.
func sparse(pairs ...any) []byte {
	var b []byte
	for i := 0; i < len(pairs); i += 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(pairs[i].(int)))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(pairs[i+1].(float64))))
	}
	return b
}

func build(t testing.TB, rows ...[]byte) *Stats {
	t.Helper()
	s := New()
	for i, r := range rows {
		if err := s.AppendRow(r); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	return s
}

// The golden rows, spelled out as the bytes a binlog holds for them:
//
//	row 0: token 3 tf 2.0, token 7 tf 1.0
//	row 1: token 3 tf 1.0, token 100 tf 2.5
//	row 2: token 0x01020304 tf 0.9
//
// rows 3; tokens int64(2)+int64(1)+int64(1)+int64(2.5)+int64(0.9) = 2+1+1+2+0 = 6;
// token 3 is in 2 rows, 7, 100 and 0x01020304 in 1 each.
var goldenRows = [][]byte{
	{3, 0, 0, 0, 0x00, 0x00, 0x00, 0x40 /* 2.0 */, 7, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f /* 1.0 */},
	{3, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f /* 1.0 */, 100, 0, 0, 0, 0x00, 0x00, 0x20, 0x40 /* 2.5 */},
	{0x04, 0x03, 0x02, 0x01, 0x66, 0x66, 0x66, 0x3f /* 0.9 */},
}

var golden = []byte{
	0, 0, 0, 0, // version 0
	3, 0, 0, 0, 0, 0, 0, 0, // rows
	6, 0, 0, 0, 0, 0, 0, 0, // tokens
	3, 0, 0, 0, 2, 0, 0, 0, // token 3: 2 rows
	7, 0, 0, 0, 1, 0, 0, 0, // token 7: 1 row
	100, 0, 0, 0, 1, 0, 0, 0, // token 100: 1 row
	0x04, 0x03, 0x02, 0x01, 1, 0, 0, 0, // token 0x01020304: 1 row
}

func TestGolden(t *testing.T) {
	s := build(t, goldenRows...)
	if got := Encode(s); !bytes.Equal(got, golden) {
		t.Fatalf("Encode:\n got % x\nwant % x", got, golden)
	}
	d, err := Decode("golden", golden)
	if err != nil {
		t.Fatal(err)
	}
	if d.NumRows() != 3 || d.NumTokens() != 6 || d.Len() != 4 {
		t.Fatalf("decoded rows %d tokens %d distinct %d, want 3 6 4", d.NumRows(), d.NumTokens(), d.Len())
	}
	want := map[uint32]int32{3: 2, 7: 1, 100: 1, 0x01020304: 1, 8: 0}
	for id, n := range want {
		if got := d.RowsWithToken(id); got != n {
			t.Errorf("token %d in %d rows, want %d", id, got, n)
		}
	}
	var order []uint32
	for id := range d.Tokens() {
		order = append(order, id)
	}
	if len(order) != 4 || order[0] != 3 || order[1] != 7 || order[2] != 100 || order[3] != 0x01020304 {
		t.Fatalf("Tokens order %v", order)
	}
	if !d.Equal(s) {
		t.Fatal("decoded stats differ from the built ones")
	}
}

// TestRowCounts: a token counts once per row that holds it, whatever its frequency.
func TestRowCounts(t *testing.T) {
	s := build(t, sparse(5, 9.0), sparse(5, 1.0, 6, 1.0), sparse(), sparse(6, 0.5))
	if s.NumRows() != 4 || s.RowsWithToken(5) != 2 || s.RowsWithToken(6) != 2 || s.NumTokens() != 11 {
		t.Fatalf("rows %d, token 5 in %d, token 6 in %d, tokens %d; want 4 2 2 11",
			s.NumRows(), s.RowsWithToken(5), s.RowsWithToken(6), s.NumTokens())
	}
}

// TestTruncation: each frequency truncates toward zero before it is summed, as Milvus's
// int64(value) does, so fractions never add up across pairs.
func TestTruncation(t *testing.T) {
	s := build(t, sparse(1, 0.99, 2, 0.99, 3, 1.99), sparse(1, 3.0, 2, 1e9))
	if want := int64(0 + 0 + 1 + 3 + 1e9); s.NumTokens() != want {
		t.Fatalf("tokens %d, want %d", s.NumTokens(), want)
	}
}

func TestAppendRowRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		row  []byte
		want string
	}{
		{"partial pair", sparse(1, 1.0)[:7], "sparse row of 7 bytes is not a whole number of 8-byte"},
		{"repeated token", sparse(4, 1.0, 4, 1.0), "pair 1: token ID 4 does not follow 4 in ascending order"},
		{"unsorted", sparse(9, 1.0, 4, 1.0), "pair 1: token ID 4 does not follow 9"},
		{"reserved id", sparse(math.MaxUint32, 1.0), "token ID 4294967295 is reserved"},
		{"negative", sparse(1, -1.0), "token 1 has frequency -1, want a finite value"},
		{"NaN", sparse(1, math.NaN()), "token 1 has frequency NaN"},
		{"Inf", sparse(1, math.Inf(1)), "token 1 has frequency +Inf"},
		{"too large", sparse(1, 1e19), "token 1 has frequency 1e+19"},
	} {
		s := build(t, sparse(1, 2.0))
		before := Encode(s)
		err := s.AppendRow(c.row)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if !bytes.Equal(Encode(s), before) {
			t.Errorf("%s: a refused row changed the stats", c.name)
		}
	}
}

func TestTokenTotalOverflow(t *testing.T) {
	s := New()
	s.tokens = math.MaxInt64 - 5
	if err := s.AppendRow(sparse(1, 6.0)); err == nil || !strings.Contains(err.Error(), "token total overflows int64") {
		t.Fatalf("error %v", err)
	}
	if err := s.AppendRow(sparse(1, 5.0)); err != nil || s.NumTokens() != math.MaxInt64 {
		t.Fatalf("error %v, tokens %d", err, s.NumTokens())
	}
}

func TestMerge(t *testing.T) {
	a := build(t, goldenRows[0], goldenRows[1])
	b := build(t, goldenRows[2], sparse(3, 4.0))
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	want := build(t, append(append([][]byte{}, goldenRows...), sparse(3, 4.0))...)
	if !a.Equal(want) || a.RowsWithToken(3) != 3 || a.NumRows() != 4 || a.NumTokens() != 10 {
		t.Fatalf("merged rows %d tokens %d token 3 in %d", a.NumRows(), a.NumTokens(), a.RowsWithToken(3))
	}
	if b.NumRows() != 2 {
		t.Fatal("Merge changed its argument")
	}

	big := New()
	big.counts[3], big.rows = math.MaxInt32, math.MaxInt32
	before := Encode(a)
	if err := a.Merge(big); err == nil || !strings.Contains(err.Error(), "token 3 exceeds 2^31-1") {
		t.Fatalf("overflowing merge: %v", err)
	}
	if !bytes.Equal(Encode(a), before) {
		t.Fatal("a failed merge changed the stats")
	}
}

func TestRoundTrip(t *testing.T) {
	empty := Encode(New())
	if len(empty) != HeaderSize {
		t.Fatalf("empty stats encode to %d bytes", len(empty))
	}
	for _, s := range []*Stats{New(), build(t, goldenRows...), build(t, sparse(0, 1.0, 1<<31, 3.0, math.MaxUint32-1, 7.5))} {
		d, err := Decode("rt", Encode(s))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Equal(s) || !bytes.Equal(Encode(d), Encode(s)) {
			t.Fatalf("round trip changed the stats: % x", Encode(s))
		}
	}
}

// TestDecodeMilvusOrder: Milvus writes entries in map order and several files of one field
// merge by summing; a token repeated within one file sums too, as Deserialize adds each entry.
func TestDecodeMilvusOrder(t *testing.T) {
	header := []byte{0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0} // 4 rows, 9 tokens
	data := append(bytes.Clone(header),
		100, 0, 0, 0, 1, 0, 0, 0,
		3, 0, 0, 0, 2, 0, 0, 0,
		100, 0, 0, 0, 2, 0, 0, 0)
	s, err := Decode("unordered", data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.RowsWithToken(100) != 3 || s.RowsWithToken(3) != 2 || s.NumRows() != 4 || s.NumTokens() != 9 {
		t.Fatalf("decoded %d tokens, 100 in %d rows, 3 in %d", s.Len(), s.RowsWithToken(100), s.RowsWithToken(3))
	}
	want := append(bytes.Clone(header),
		3, 0, 0, 0, 2, 0, 0, 0,
		100, 0, 0, 0, 3, 0, 0, 0)
	if got := Encode(s); !bytes.Equal(got, want) {
		t.Fatalf("re-encoded % x, want % x", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	mut := func(f func([]byte) []byte) []byte { return f(bytes.Clone(golden)) }
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "0 bytes, shorter than the 20-byte header"},
		{"truncated header", golden[:19], "19 bytes, shorter than the 20-byte header"},
		{"version", mut(func(b []byte) []byte { b[0] = 1; return b }), "unsupported version 1 (want 0)"},
		{"partial entry", golden[:len(golden)-3], "29 bytes after the header is not a whole number of 8-byte entries (5 trailing bytes)"},
		{"negative rows", mut(func(b []byte) []byte { b[11] = 0x80; return b }), "negative header: -9223372036854775805 rows"},
		{"negative tokens", mut(func(b []byte) []byte { b[19] = 0xff; return b }), "negative header: 3 rows, -72057594037927930 tokens"},
		{"negative count", mut(func(b []byte) []byte { b[27] = 0xff; return b }), "entry 0: token 3 has negative row count -16777214"},
		{"count above rows", mut(func(b []byte) []byte { b[32] = 4; return b }), "entry 1: token 7 is in 4 rows, more than the file's 3"},
		{"duplicate above rows", append(bytes.Clone(golden), 3, 0, 0, 0, 2, 0, 0, 0), "entry 4: token 3 is in 4 rows, more than the file's 3"},
	} {
		_, err := Decode("files/bm25_stats/1/2/3/102/9", c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "bm25stats files/bm25_stats/1/2/3/102/9: ") || !errors.Is(err, corrupt.Err) {
			t.Errorf("%s: error %q does not name the key or is not marked corrupt", c.name, err)
		}
	}
}

func TestDecodeCountAboveInt32(t *testing.T) {
	data := Encode(&Stats{rows: 1 << 40, counts: map[uint32]int32{5: math.MaxInt32}})
	data = append(data, 5, 0, 0, 0, 1, 0, 0, 0)
	if _, err := Decode("k", data); err == nil || !strings.Contains(err.Error(), "token 5 is in 2147483648 rows, more than 2^31-1") {
		t.Fatalf("error %v", err)
	}
}
