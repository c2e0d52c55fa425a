package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/storage/bm25stats"
)

// TestInspectBM25 writes a BM25 stats log into a local store and inspects it by key (text and
// --json) and by path.
func TestInspectBM25(t *testing.T) {
	s := bm25stats.New()
	for _, row := range [][2][]uint32{{{4, 9, 700}, {1, 2, 1}}, {{4}, {3}}, {{4, 11}, {1, 1}}} {
		var b []byte
		for i, id := range row[0] {
			b = binary.LittleEndian.AppendUint32(b, id)
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(row[1][i])))
		}
		if err := s.AppendRow(b); err != nil {
			t.Fatal(err)
		}
	}
	store := t.TempDir()
	key := "files/bm25_stats/1/2/3/102/9"
	file := filepath.Join(store, filepath.FromSlash(key))
	os.MkdirAll(filepath.Dir(file), 0o755)
	if err := os.WriteFile(file, bm25stats.Encode(s), 0o644); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "inspect", "--storage", store, key, "--rows", "2")
	for _, want := range []string{
		"kind: bm25_stats, 52 bytes",
		"BM25 stats: version 0, 3 rows, 9 tokens (3 per row), 4 distinct tokens",
		"first 2 tokens by ID:\n    token 4: 3 rows\n    token 9: 1 rows\n",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("inspect BM25 stats: exit %d, output lacks %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "token 11") {
		t.Fatalf("--rows 2 shows a third token:\n%s", r.stdout)
	}

	r = runCLI(t, "inspect", file, "--json")
	var ins struct {
		Kind    string
		NumRows int64 `json:"num_rows"`
		BM25    struct {
			Version        int32
			Rows, Tokens   int64
			AvgTokens      float64 `json:"avg_tokens_per_row"`
			DistinctTokens int     `json:"distinct_tokens"`
			First          []struct {
				Token uint32
				Rows  int32
			} `json:"first_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil || r.code != 0 {
		t.Fatalf("inspect --json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	b := ins.BM25
	if ins.Kind != "bm25_stats" || ins.NumRows != 3 || b.Rows != 3 || b.Tokens != 9 || b.AvgTokens != 3 ||
		b.DistinctTokens != 4 || len(b.First) != 4 || b.First[0].Token != 4 || b.First[0].Rows != 3 ||
		b.First[3].Token != 700 || b.First[3].Rows != 1 {
		t.Fatalf("inspect --json: %+v", ins)
	}

	gen := t.TempDir()
	r = runCLI(t, "gen", "--storage", gen, "--plans", filepath.Join(gen, "plans"), "--segments", "1", "--rows", "300",
		"--dim", "4", "--bm25")
	if r.code != 0 {
		t.Fatalf("gen --bm25: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, "inspect", firstKey(t, gen, "/bm25_stats/"))
	if r.code != 0 || !strings.Contains(r.stdout, "BM25 stats: version 0, 300 rows, ") {
		t.Fatalf("inspect a generated BM25 stats log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	os.WriteFile(file, []byte{1, 0, 0, 0}, 0o644)
	r = runCLI(t, "inspect", file)
	if r.code != exitBadInput || !strings.Contains(r.stderr, "4 bytes, shorter than the 20-byte header") {
		t.Fatalf("inspect a truncated BM25 stats log: exit %d\n%s", r.code, r.stderr)
	}
}
