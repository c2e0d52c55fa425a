package gen

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/bm25stats"
	"github.com/compacthost/compacthost/storage/milvuspath"
)

// BM25 text: words drawn from a fixed vocabulary with Zipf-distributed frequencies, as in
// natural language, so a few tokens are in most rows and most tokens in few.
const (
	vocabularySize = 5000
	zipfS          = 1.1 // exponent: rank r is drawn with probability ∝ 1/(1+r)^1.1
	minWords       = 4
	maxWords       = 40
)

var syllables = []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "an", "el", "or", "us", "ba", "de", "fi", "gu"}

// word returns the vocabulary word of rank r: lowercase ASCII letters, distinct per rank, so
// Milvus's default analyzer (standard tokenizer, lowercase filter) yields it unchanged.
func word(r int) string {
	var b strings.Builder
	for {
		b.WriteString(syllables[r%len(syllables)])
		r /= len(syllables)
		if r == 0 {
			return b.String()
		}
		r--
	}
}

// TokenID is the sparse index Milvus's BM25 function gives a token: CRC-32 (IEEE) of its first
// 100 bytes, modulo 2^32-1 (typeutil.HashString2LessUint32), so 2^32-1 never occurs.
func TokenID(token string) uint32 {
	if len(token) > 100 {
		token = token[:100]
	}
	return crc32.ChecksumIEEE([]byte(token)) % math.MaxUint32
}

// SparseRow is the BM25 function output for a text of space-separated lowercase words: one
// (TokenID, term frequency) pair per distinct word, by ascending token ID, as a
// SparseFloatVector row is stored.
func SparseRow(text string) []byte {
	tf := map[uint32]float32{}
	for _, w := range strings.Fields(text) {
		tf[TokenID(w)]++
	}
	ids := make([]uint32, 0, len(tf))
	for id := range tf {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	row := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		row = binary.LittleEndian.AppendUint32(row, id)
		row = binary.LittleEndian.AppendUint32(row, math.Float32bits(tf[id]))
	}
	return row
}

// text returns the BM25 input of row i: a function of the segment's seed and i alone, so any
// chunking gives the same rows.
func (seg *segmentRows) text(i int) string {
	rng := rand.New(rand.NewPCG(seg.seed^0xb325_7e47, uint64(i)))
	z := rand.NewZipf(rng, zipfS, 1, vocabularySize-1)
	n := minWords + rng.IntN(maxWords-minWords+1)
	words := make([]string, n)
	for k := range words {
		words[k] = word(int(z.Uint64()))
	}
	return strings.Join(words, " ")
}

// bm25Fields returns the input and output fields and the function Schema adds for Config.BM25.
func bm25Fields() ([]*schemapb.FieldSchema, *schemapb.FunctionSchema) {
	fields := []*schemapb.FieldSchema{
		{FieldID: TextField, Name: "text", DataType: schemapb.DataType_VarChar,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "1024"}, {Key: "enable_analyzer", Value: "true"}}},
		{FieldID: SparseField, Name: "text_sparse", DataType: schemapb.DataType_SparseFloatVector, IsFunctionOutput: true},
	}
	fn := &schemapb.FunctionSchema{Name: "text_bm25", Id: 100, Type: schemapb.FunctionType_BM25,
		InputFieldNames: []string{"text"}, InputFieldIds: []int64{TextField},
		OutputFieldNames: []string{"text_sparse"}, OutputFieldIds: []int64{SparseField}}
	return fields, fn
}

// bm25Columns builds the text and sparse columns of rows [lo, hi).
func (seg *segmentRows) bm25Columns(mem memory.Allocator, lo, hi int) (text, sparse arrow.Array) {
	tb := array.NewStringBuilder(mem)
	sb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	defer tb.Release()
	defer sb.Release()
	for i := lo; i < hi; i++ {
		t := seg.text(i)
		tb.Append(t)
		sb.Append(SparseRow(t))
	}
	return tb.NewArray(), sb.NewArray()
}

// writeBM25Stats writes the BM25 stats log of every row of seg, as the DataNode writes one when
// it flushes the segment.
func (g *generator) writeBM25Stats(seg *segmentRows) (*datapb.FieldBinlog, error) {
	c := g.cfg
	s := bm25stats.New()
	for i := range c.RowsPerSegment {
		if err := s.AppendRow(SparseRow(seg.text(i))); err != nil {
			return nil, fmt.Errorf("gen: BM25 stats of segment %d row %d: %w", seg.id, i, err)
		}
	}
	data := bm25stats.Encode(s)
	logID := g.logID()
	key := milvuspath.BM25Log(c.RootPath, c.CollectionID, c.PartitionID, seg.id, SparseField, logID)
	if err := g.put(key, data); err != nil {
		return nil, err
	}
	return &datapb.FieldBinlog{FieldID: SparseField, Binlogs: []*datapb.Binlog{{
		EntriesNum: s.NumRows(), LogPath: key, LogSize: int64(len(data)), MemorySize: int64(len(data)), LogID: logID,
	}}}, nil
}
