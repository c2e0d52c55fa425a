package bm25stats_test

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/compacthost/compacthost/storage/bm25stats"
)

// Compute the stats of two rows of a BM25 output field, serialize them as Milvus does and
// read them back.
func Example() {
	// A sparse row is (token ID, frequency) pairs by ascending token ID.
	pair := func(b []byte, id uint32, tf float32) []byte {
		b = binary.LittleEndian.AppendUint32(b, id)
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(tf))
	}
	s := bm25stats.New()
	for _, row := range [][]byte{pair(pair(nil, 11, 2), 42, 1), pair(nil, 42, 3)} {
		if err := s.AppendRow(row); err != nil {
			panic(err)
		}
	}

	data := bm25stats.Encode(s)
	got, err := bm25stats.Decode("files/bm25_stats/1/2/3/102/9", data)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(data), "bytes:", got.NumRows(), "rows,", got.NumTokens(), "tokens")
	for id, n := range got.Tokens() {
		fmt.Printf("token %d in %d rows\n", id, n)
	}
	// Output:
	// 36 bytes: 2 rows, 6 tokens
	// token 11 in 1 rows
	// token 42 in 2 rows
}
