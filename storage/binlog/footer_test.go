package binlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// A column whose dictionary outgrows its limit after the first data page was
// cut has data pages in two encodings. arrow-go lists their encoding_stats in
// Go map order, so before SortEncodingStats the same rows encoded to two
// different footers about every other time. Every encoding must now give the
// same bytes, with the stats in a fixed order.
func TestEncodeDeterministicWithDictionaryFallback(t *testing.T) {
	cases := []struct {
		field *schemapb.FieldSchema
		col   func() arrow.Array
	}{
		{testField(101, schemapb.DataType_FloatVector, 256, false), func() arrow.Array { return uniqueVectors(3000, 256) }},
		{testField(104, schemapb.DataType_VarChar, 0, true), func() arrow.Array { return uniqueStrings(4000, 400) }},
	}
	for _, c := range cases {
		col := c.col()
		chunks := []arrow.Array{array.NewSlice(col, 0, 700), array.NewSlice(col, 700, int64(col.Len()))}
		var first []byte
		for run := range 16 {
			e, err := EncodeInsertChunks(baseDesc, c.field, chunks, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			obj := append(append([]byte{}, e.Header...), e.Payload...)
			if run == 0 {
				first = obj
				checkMixedEncodings(t, c.field, obj)
				continue
			}
			if !bytes.Equal(obj, first) {
				t.Fatalf("%s: encoding %d differs from the first (%d vs %d bytes)", c.field.GetDataType(), run, len(obj), len(first))
			}
		}
		for _, ch := range chunks {
			ch.Release()
		}
		col.Release()
	}
}

// checkMixedEncodings asserts the test really hit the fallback case, that
// the stats are ordered and that the rewritten footer still reads.
func checkMixedEncodings(t *testing.T, f *schemapb.FieldSchema, obj []byte) {
	t.Helper()
	pf := payloadMeta(t, obj)
	defer pf.Close()
	cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	data := 0
	for _, s := range cc.EncodingStats() {
		got = append(got, fmt.Sprintf("%d/%s", s.PageType, s.Encoding))
		if s.PageType != dictionaryPage {
			data++
		}
	}
	want := fmt.Sprintf("2/%s 0/%s 0/%s", parquet.Encodings.Plain, parquet.Encodings.Plain, parquet.Encodings.RLEDict)
	if data != 2 || strings.Join(got, " ") != want {
		t.Fatalf("%s: encoding stats %v, want %s (dictionary page, then PLAIN and RLE_DICTIONARY data pages)", f.GetDataType(), got, want)
	}
	col, _, _ := readAll(t, "insert_log/1/2/3/x/1", obj, f, 0)
	col.Release()
}

func uniqueVectors(n, dim int) arrow.Array {
	b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: 4 * dim})
	defer b.Release()
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]byte, 4*dim)
	for range n {
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		b.Append(v)
	}
	return b.NewArray()
}

func uniqueStrings(n, size int) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	pad := strings.Repeat("x", size)
	for i := range n {
		if i%5 == 4 {
			b.AppendNull()
			continue
		}
		b.Append(fmt.Sprintf("%08d%s", i, pad))
	}
	return b.NewArray()
}
