package statslog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/greatroar/blobloom"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// BinaryMagic starts the binary stats format of 2026 Milvus master
// (internal/storage/stats.go, "mpkstats" version 1), read here so that stats
// written by newer Milvus load too. Layout, all little-endian:
//
//	file header, 64 bytes: magic[8] version u32 (=1) entries u32 pkType u32 fieldID i32 reserved[40]
//	per entry, a 64-byte header: blocks u32, k u32, then
//	  Int64:   min i64, max i64, reserved[40]
//	  VarChar: pkBytes u32, reserved[52]; then pkBytes of: minLen u32, min, maxLen u32, max
//	then blocks × 64 bytes of blocked-filter words (the JSON "b" blocks, unencoded).
const BinaryMagic = "mpkstats"

const binaryHeaderSize = 64

func decodeBinary(data []byte) ([]*Stats, error) {
	if len(data) < binaryHeaderSize {
		return nil, fmt.Errorf("binary stats: %d bytes, shorter than the %d-byte header", len(data), binaryHeaderSize)
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[8:]); v != 1 {
		return nil, fmt.Errorf("binary stats: unsupported version %d", v)
	}
	n := le.Uint32(data[12:])
	pkType := schemapb.DataType(le.Uint32(data[16:]))
	fieldID := int64(int32(le.Uint32(data[20:])))
	if pkType != schemapb.DataType_Int64 && pkType != schemapb.DataType_VarChar {
		return nil, fmt.Errorf("binary stats: pk type %d is neither Int64 (5) nor VarChar (21)", int32(pkType))
	}
	var out []*Stats
	off := binaryHeaderSize
	for i := uint32(0); i < n; i++ {
		if len(data)-off < binaryHeaderSize {
			return nil, fmt.Errorf("binary stats: entry %d header truncated at offset %d", i, off)
		}
		h := data[off : off+binaryHeaderSize]
		blocks, k := le.Uint32(h), le.Uint32(h[4:])
		s := &Stats{FieldID: fieldID, PKType: pkType, HasRange: true}
		off += binaryHeaderSize
		if pkType == schemapb.DataType_Int64 {
			s.Min.Int, s.Max.Int = int64(le.Uint64(h[8:])), int64(le.Uint64(h[16:]))
		} else {
			size := int(le.Uint32(h[8:]))
			if size > len(data)-off {
				return nil, fmt.Errorf("binary stats: entry %d pk bounds (%d bytes) truncated", i, size)
			}
			var err error
			if s.Min.Str, s.Max.Str, err = readBounds(data[off : off+size]); err != nil {
				return nil, fmt.Errorf("binary stats: entry %d: %w", i, err)
			}
			off += size
		}
		if blocks == 0 || uint64(blocks) > uint64(len(data)-off)/64 {
			return nil, fmt.Errorf("binary stats: entry %d has %d filter blocks, %d bytes remain", i, blocks, len(data)-off)
		}
		end := off + int(blocks)*64
		f, err := loadBlocks(data[off:end], blocks, k)
		if err != nil {
			return nil, fmt.Errorf("binary stats: entry %d: %w", i, err)
		}
		s.Filter = f
		off = end
		out = append(out, s)
	}
	return out, nil
}

func readBounds(b []byte) (lo, hi string, err error) {
	next := func() (string, error) {
		if len(b) < 4 {
			return "", fmt.Errorf("pk bound length truncated")
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return "", fmt.Errorf("pk bound of %d bytes truncated", n)
		}
		s := string(b[4 : 4+n])
		b = b[4+n:]
		return s, nil
	}
	if lo, err = next(); err != nil {
		return "", "", err
	}
	hi, err = next()
	return lo, hi, err
}

// loadBlocks builds a blobloom filter from raw blocks through blobloom's own
// binary loader, whose block layout is the same.
func loadBlocks(raw []byte, blocks, k uint32) (Filter, error) {
	if k < 2 || k > maxHashes {
		// blobloom would raise k to 2 and test a bit Milvus never set.
		return nil, fmt.Errorf("k = %d out of range 2..%d", k, maxHashes)
	}
	var hdr [64]byte
	copy(hdr[:], "blobloom")
	binary.LittleEndian.PutUint32(hdr[12:], blocks-1)
	binary.LittleEndian.PutUint32(hdr[16:], k)
	l, err := blobloom.NewLoader(io.MultiReader(bytes.NewReader(hdr[:]), bytes.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	f, err := l.Load(nil)
	if err != nil {
		return nil, err
	}
	return blocked{f}, nil
}
