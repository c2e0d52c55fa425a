package binlog

import (
	"bytes"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A column given as uneven chunks (slices of one array) encodes to a binlog
// that decodes to the same rows as the whole column, with one or several row
// groups, and Encoded's reader yields exactly Header then Payload. Its
// memory size is that of the chunks concatenated, though bit-packed and
// offset buffers of the chunks round and start per chunk.
func TestEncodeInsertChunksRoundTrip(t *testing.T) {
	for _, nullable := range []bool{false, true} {
		for _, f := range allTypes(nullable) {
			col := makeColumn(t, f, 1000, nullable)
			var chunks []arrow.Array
			for _, r := range [][2]int64{{0, 1}, {1, 300}, {300, 301}, {301, 999}, {999, 1000}} {
				chunks = append(chunks, array.NewSlice(col, r[0], r[1]))
			}
			joined, err := array.Concatenate(chunks, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			for _, group := range []int64{0, 256} {
				e, err := EncodeInsertChunks(baseDesc, f, chunks, WriterOptions{MaxRowGroupRows: group})
				if err != nil {
					t.Fatalf("%s: %v", f.GetDataType(), err)
				}
				obj, err := io.ReadAll(e.Reader())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(obj, append(append([]byte{}, e.Header...), e.Payload...)) || e.Bytes != int64(len(obj)) || e.Rows != 1000 ||
					e.MemorySize != MemorySize(joined) {
					t.Fatalf("%s: object of %d bytes, Written %+v", f.GetDataType(), len(obj), e.Written)
				}
				got, _, _ := readAll(t, "insert_log/1/2/3/x/1", obj, f, 0)
				if !array.Equal(col, got) {
					t.Fatalf("%s, row groups of %d: chunked round trip differs", f.GetDataType(), group)
				}
				got.Release()
				wantGroups := 1
				if group > 0 {
					wantGroups = int((1000 + group - 1) / group)
				}
				pf := payloadMeta(t, obj)
				if pf.NumRowGroups() != wantGroups {
					t.Fatalf("%s: %d row groups, want %d", f.GetDataType(), pf.NumRowGroups(), wantGroups)
				}
				pf.Close()
			}
			for _, c := range chunks {
				c.Release()
			}
			joined.Release()
			col.Release()
		}
	}
}
