package binlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// parquetMagic ends every Parquet file, after the footer and its length.
const parquetMagic = "PAR1"

// dictionaryPage is Parquet's PageType DICTIONARY_PAGE; encoding_stats lists
// dictionary pages before data pages.
const dictionaryPage = 2

// SortEncodingStats puts the encoding_stats of every column chunk of the
// Parquet file in payload in a fixed order (dictionary pages first, then by
// encoding), rewriting the footer in place. Every Parquet writer of the
// project (binlog payloads, storage/packed files) calls it before the bytes
// leave the writer.
//
// arrow-go builds each list by ranging over a Go map. A column chunk whose
// data pages use two encodings (a dictionary-encoded page was cut before the
// dictionary outgrew its size limit, PLAIN pages followed) so lists them in
// a random order, and the same rows encode to different bytes from run to
// run. Reordering a Thrift list does not change its encoded length, so the
// footer keeps its size and every offset stays valid.
func SortEncodingStats(payload []byte) error {
	n := len(payload)
	if n < 12 || string(payload[n-4:]) != parquetMagic {
		return fmt.Errorf("parquet payload of %d bytes does not end in %q", n, parquetMagic)
	}
	size := int(binary.LittleEndian.Uint32(payload[n-8:]))
	if size <= 0 || size > n-12 {
		return fmt.Errorf("parquet footer length %d does not fit a %d-byte payload", size, n)
	}
	footer := payload[n-8-size : n-8]
	md, err := metadata.NewFileMetaData(footer, nil)
	if err != nil {
		return fmt.Errorf("parquet footer: %w", err)
	}
	sorted := true
	for _, rg := range md.RowGroups {
		for _, cc := range rg.Columns {
			if cc.MetaData == nil {
				continue
			}
			stats := cc.MetaData.EncodingStats
			// The element type lives in an internal arrow-go package, so the
			// list is ordered through indexes.
			less := func(i, j int) bool {
				ri, rj := stats[i].PageType != dictionaryPage, stats[j].PageType != dictionaryPage
				if ri != rj {
					return !ri
				}
				return stats[i].Encoding < stats[j].Encoding
			}
			if !sort.SliceIsSorted(stats, less) {
				sort.SliceStable(stats, less)
				sorted = false
			}
		}
	}
	if sorted {
		return nil
	}
	var buf bytes.Buffer
	if _, err := md.WriteTo(&buf, nil); err != nil {
		return fmt.Errorf("parquet footer: %w", err)
	}
	if buf.Len() != size {
		return fmt.Errorf("parquet footer re-encoded to %d bytes, was %d", buf.Len(), size)
	}
	copy(footer, buf.Bytes())
	return nil
}
