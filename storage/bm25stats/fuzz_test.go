package bm25stats

import (
	"bytes"
	"testing"
)

func FuzzDecode(f *testing.F) {
	f.Add(golden)
	f.Add(Encode(New()))
	f.Add(Encode(build(f, sparse(1, 1.0, 2, 3.5), sparse(2, 1.0))))
	f.Add(append(bytes.Clone(golden), 3, 0, 0, 0, 1, 0, 0, 0))
	f.Add(golden[:HeaderSize+3])
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode("fuzz/bm25_stats/1/2/3/102/9", data)
		if err != nil {
			return
		}
		if s.NumRows() < 0 || s.NumTokens() < 0 {
			t.Fatalf("decoded negative header: %d rows, %d tokens", s.NumRows(), s.NumTokens())
		}
		for id, n := range s.Tokens() {
			if n < 0 || int64(n) > s.NumRows() {
				t.Fatalf("token %d in %d rows of %d", id, n, s.NumRows())
			}
		}
		again, err := Decode("re-encoded", Encode(s))
		if err != nil || !again.Equal(s) {
			t.Fatalf("decoded stats do not round-trip: %v", err)
		}
		if err := s.Merge(again); err != nil && s.NumRows() < 1<<30 && s.NumTokens() < 1<<62 {
			t.Fatalf("merging small stats with themselves: %v", err)
		}
	})
}
