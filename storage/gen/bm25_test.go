package gen

import (
	"context"
	"encoding/base64"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/bm25stats"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestGenerateBM25 reads a BM25 collection back in storage v1, v2 and mixed: every sparse row
// is the term-frequency vector of its text, and each segment's BM25 stats log equals the stats
// recomputed from the rows read.
func TestGenerateBM25(t *testing.T) {
	for _, v := range []struct {
		version int64
		mixed   bool
	}{{0, false}, {2, false}, {2, true}} {
		store := objstoretest.Local(t)
		cfg := smallConfig(schemapb.DataType_Int64, DeleteUniform)
		cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows = 2, 900, 400
		cfg.StorageVersion, cfg.MixedVersions, cfg.BM25 = v.version, v.mixed, true
		col, err := Generate(context.Background(), store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fns := col.Schema.GetFunctions()
		if len(fns) != 1 || fns[0].GetType() != schemapb.FunctionType_BM25 ||
			!slices.Equal(fns[0].GetInputFieldIds(), []int64{TextField}) || !slices.Equal(fns[0].GetOutputFieldIds(), []int64{SparseField}) ||
			len(col.MixPlan.GetSchema().GetFunctions()) != 1 {
			t.Fatalf("version %d: schema functions %v", v.version, fns)
		}
		var bm25Logs int64
		for s, vals := range collectionValues(t, store, col) {
			seg := col.Segments[s]
			texts, rows := vals[TextField], vals[SparseField]
			if len(texts) != cfg.RowsPerSegment || len(rows) != cfg.RowsPerSegment {
				t.Fatalf("segment %d: %d texts, %d sparse rows", seg.SegmentID, len(texts), len(rows))
			}
			want := bm25stats.New()
			for i := range rows {
				row, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(rows[i], "binary:"))
				if err != nil {
					t.Fatal(err)
				}
				text := strings.TrimPrefix(texts[i], "utf8:")
				if !slices.Equal(row, SparseRow(text)) {
					t.Fatalf("segment %d row %d: sparse row is not the term frequencies of %q", seg.SegmentID, i, text)
				}
				if err := want.AppendRow(row); err != nil {
					t.Fatal(err)
				}
			}
			fbs := col.BM25Logs[seg.SegmentID]
			if len(fbs) != 1 || fbs[0].FieldID != SparseField || len(fbs[0].Binlogs) != 1 {
				t.Fatalf("segment %d: BM25 logs %v", seg.SegmentID, fbs)
			}
			b := fbs[0].Binlogs[0]
			bm25Logs++
			k, err := milvuspath.Parse(b.LogPath)
			if err != nil || k.Kind != milvuspath.KindBM25 || k.SegmentID != seg.SegmentID || k.FieldID != SparseField || k.LogID != b.LogID {
				t.Fatalf("BM25 log key %q (%+v, %v)", b.LogPath, k, err)
			}
			data := objstoretest.ReadAll(t, store, b.LogPath)
			got, err := bm25stats.Decode(b.LogPath, data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) || b.EntriesNum != int64(cfg.RowsPerSegment) || b.LogSize != int64(len(data)) || b.MemorySize != b.LogSize {
				t.Fatalf("%s: stats log (%d rows, %d tokens, %d distinct) differs from the rows' (%d, %d, %d), or its Binlog %+v is wrong",
					b.LogPath, got.NumRows(), got.NumTokens(), got.Len(), want.NumRows(), want.NumTokens(), want.Len(), b)
			}
			// Zipf text: the commonest word is in most rows, and the tail is long.
			var top int32
			for _, n := range got.Tokens() {
				top = max(top, n)
			}
			if top < int32(cfg.RowsPerSegment)/2 || got.Len() < 500 {
				t.Fatalf("segment %d: commonest token in %d of %d rows, %d distinct tokens", seg.SegmentID, top, cfg.RowsPerSegment, got.Len())
			}
		}
		if r := col.MixPlan.PreAllocatedLogIDs; r.End-r.Begin != (countLogs(col.MixPlan.SegmentBinlogs)+bm25Logs)*idExpansion {
			t.Fatalf("mix plan log range %d, want %d per input log including the BM25 logs", r.End-r.Begin, idExpansion)
		}
	}
}

func TestTokenID(t *testing.T) {
	// CRC-32 (IEEE) check value of "123456789" is 0xCBF43926.
	if got := TokenID("123456789"); got != 0xCBF43926 {
		t.Fatalf("TokenID(123456789) = %#x", got)
	}
	long := strings.Repeat("x", 100)
	if TokenID(long) != TokenID(long+"tail") {
		t.Fatal("TokenID reads past the first 100 bytes")
	}
	if got := SparseRow("b a b"); !slices.Equal(got, sparseOf(map[string]float32{"a": 1, "b": 2})) {
		t.Fatalf("SparseRow(b a b) = % x", got)
	}
}

// sparseOf lays out a term-frequency map the slow way: sorted pairs.
func sparseOf(tf map[string]float32) []byte {
	type pair struct {
		id uint32
		tf float32
	}
	var ps []pair
	for w, n := range tf {
		ps = append(ps, pair{TokenID(w), n})
	}
	slices.SortFunc(ps, func(a, b pair) int { return int(int64(a.id) - int64(b.id)) })
	var out []byte
	for _, p := range ps {
		bits := math.Float32bits(p.tf)
		out = append(out, byte(p.id), byte(p.id>>8), byte(p.id>>16), byte(p.id>>24), byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24))
	}
	return out
}
