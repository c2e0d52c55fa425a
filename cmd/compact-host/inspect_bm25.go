package main

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/compacthost/compacthost/storage/bm25stats"
	"github.com/compacthost/compacthost/storage/milvuspath"
)

// bm25View is a BM25 stats log as inspect shows it.
type bm25View struct {
	Version        int32        `json:"version"`
	Rows           int64        `json:"rows"`
	Tokens         int64        `json:"tokens"`
	AvgTokens      float64      `json:"avg_tokens_per_row"` // BM25's avgdl
	DistinctTokens int          `json:"distinct_tokens"`
	First          []tokenCount `json:"first_tokens,omitempty"` // by ascending token ID
}

type tokenCount struct {
	Token uint32 `json:"token"`
	Rows  int32  `json:"rows"`
}

// isBM25Key reports whether name, a key or a local path, names an object under bm25_stats/: a
// BM25 stats log has no magic number, so its key is what says what it is.
func isBM25Key(name string) bool {
	k, err := milvuspath.Parse(strings.TrimPrefix(path.Clean(filepath.ToSlash(name)), "/"))
	return err == nil && k.Kind == milvuspath.KindBM25
}

func inspectBM25(ins *inspection, data []byte, rows int) error {
	s, err := bm25stats.Decode(ins.Name, data)
	if err != nil {
		return err
	}
	ins.Kind, ins.NumRows = "bm25_stats", s.NumRows()
	v := &bm25View{Version: bm25stats.Version, Rows: s.NumRows(), Tokens: s.NumTokens(), DistinctTokens: s.Len()}
	if v.Rows > 0 {
		v.AvgTokens = float64(v.Tokens) / float64(v.Rows)
	}
	for id, n := range s.Tokens() {
		if len(v.First) >= rows {
			break
		}
		v.First = append(v.First, tokenCount{Token: id, Rows: n})
	}
	ins.BM25 = v
	return nil
}

func (v *bm25View) render(w io.Writer) {
	fmt.Fprintf(w, "  BM25 stats: version %d, %d rows, %d tokens (%.4g per row), %d distinct tokens\n",
		v.Version, v.Rows, v.Tokens, v.AvgTokens, v.DistinctTokens)
	if len(v.First) > 0 {
		fmt.Fprintf(w, "  first %d tokens by ID:\n", len(v.First))
	}
	for _, t := range v.First {
		fmt.Fprintf(w, "    token %d: %d rows\n", t.Token, t.Rows)
	}
}
