// Package safezstd replaces arrow-go's ZSTD Parquet codec with one whose
// decoder refuses to produce more bytes than the page header announced.
//
// arrow-go's codec decodes with klauspost's DecodeAll, which pre-allocates
// whatever size a frame header declares (up to 64 GiB), so a few hostile
// bytes in a payload can demand gigabytes. Milvus likewise registers its own
// ZSTD codec. Encoding is delegated unchanged to the original codec, so the
// bytes written are identical.
package safezstd

import (
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// MaxPageBytes bounds a decoded page; it equals arrow-go's default
// ReaderProperties.MaxUncompressedPageSize.
const MaxPageBytes = 256 << 20

type codec struct {
	compress.Codec // the original codec, used for encoding
}

var (
	once sync.Once
	dec  *zstd.Decoder
)

// Register installs the bounded codec for compress.Codecs.Zstd. It is
// idempotent and safe to call from init functions.
func Register() {
	once.Do(func() {
		orig, err := compress.GetCodec(compress.Codecs.Zstd)
		if err != nil {
			panic(fmt.Sprintf("safezstd: arrow-go has no zstd codec: %v", err))
		}
		dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxPageBytes), zstd.WithDecoderMaxWindow(MaxPageBytes))
		if err != nil {
			panic(fmt.Sprintf("safezstd: %v", err))
		}
		compress.RegisterCodec(compress.Codecs.Zstd, codec{orig})
	})
}

// DecodeWithError decodes src into dst, whose length is the uncompressed
// size the Parquet page header announced; more output is an error.
func (codec) DecodeWithError(dst, src []byte) ([]byte, error) {
	limit := len(dst)
	var h zstd.Header
	if err := h.Decode(src); err == nil && h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("zstd frame declares %d bytes, page header announced %d", h.FrameContentSize, limit)
	}
	out, err := dec.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("zstd data decodes to more than the %d bytes the page header announced", limit)
	}
	return out, nil
}

// Decode implements compress.Codec; it panics on malformed input, which
// arrow-go never triggers because it prefers DecodeWithError.
func (c codec) Decode(dst, src []byte) []byte {
	out, err := c.DecodeWithError(dst, src)
	if err != nil {
		panic(err)
	}
	return out
}
