package abi

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Batch layout constants (ABI.md, "Batch encoding").
const (
	BatchMagic      uint32 = 0x31424843 // the bytes "CHB1" read as a little-endian u32
	HeaderSize             = 32
	ColumnEntrySize        = 32
	Align                  = 8 // every region starts at a multiple of 8 from the batch start

	// FlagNullable is bit 0 of a column entry's flags: the field is nullable.
	FlagNullable uint8 = 1
)

// BatchKind is the kind field of a batch header.
type BatchKind uint16

// Batch kinds.
const (
	BatchRows    BatchKind = 1 // rows of one input segment, passed to compact_v1_batch
	BatchDeletes BatchKind = 2 // delete records (pk, ts), passed to compact_v1_deletes
)

func (k BatchKind) String() string {
	switch k {
	case BatchRows:
		return "rows"
	case BatchDeletes:
		return "deletes"
	}
	return fmt.Sprintf("batchkind(%d)", uint16(k))
}

// BatchHeader is the non-column part of a batch.
type BatchHeader struct {
	Kind     BatchKind
	Segment  uint32 // index into Task.Segments
	FirstRow uint64 // rows: row index of the first row within its segment; deletes: global delete index of the first record
	Rows     int    // rows (or delete records) in the batch
}

// ColumnData is one column handed to the encoder. Its layout mirrors Apache
// Arrow so host columns can be described without copying (see package
// abi/abiarrow); the encoder copies each region once into the destination.
type ColumnData struct {
	FieldID  int64
	Type     Type
	Width    uint32 // bytes per row; required for TypeFixed, ignored otherwise
	Nullable bool   // the field is nullable (sets FlagNullable)
	// Values holds the data. Fixed-width types other than TypeBool:
	// Rows*width little-endian bytes. TypeBool: an LSB-first bitmap whose
	// bit BitOffset+i is row i. String and binary: the bytes indexed by
	// Offsets.
	Values []byte
	// Offsets, for string and binary, has Rows+1 non-decreasing entries into
	// Values; they need not start at 0 (the encoder rebases them).
	Offsets []int32
	// Validity is an optional LSB-first bitmap: bit BitOffset+i set means
	// row i is not null. nil means every row is valid.
	Validity  []byte
	BitOffset int
}

func (c *ColumnData) width() uint32 {
	if c.Type == TypeFixed {
		return c.Width
	}
	return c.Type.FixedWidth()
}

// valuesLen is the byte length of the encoded values region.
func (c *ColumnData) valuesLen(rows int) (int, error) {
	if !c.Type.Valid() {
		return 0, fmt.Errorf("abi: column field %d: unknown type code %d", c.FieldID, uint8(c.Type))
	}
	if c.BitOffset < 0 {
		return 0, fmt.Errorf("abi: column field %d: negative bit offset", c.FieldID)
	}
	if c.Validity != nil && len(c.Validity)*8 < c.BitOffset+rows {
		return 0, fmt.Errorf("abi: column field %d: validity bitmap has %d bits, need %d", c.FieldID, len(c.Validity)*8, c.BitOffset+rows)
	}
	switch {
	case c.Type.VarLen():
		if len(c.Offsets) != rows+1 {
			return 0, fmt.Errorf("abi: column field %d: %d offsets for %d rows, want %d", c.FieldID, len(c.Offsets), rows, rows+1)
		}
		lo, hi := c.Offsets[0], c.Offsets[rows]
		if lo < 0 || hi < lo || int(hi) > len(c.Values) {
			return 0, fmt.Errorf("abi: column field %d: offsets [%d, %d] outside %d value bytes", c.FieldID, lo, hi, len(c.Values))
		}
		return int(hi - lo), nil
	case c.Type == TypeBool:
		if len(c.Values)*8 < c.BitOffset+rows {
			return 0, fmt.Errorf("abi: column field %d: bool bitmap has %d bits, need %d", c.FieldID, len(c.Values)*8, c.BitOffset+rows)
		}
		return rows, nil
	default:
		w := c.width()
		if w == 0 {
			return 0, fmt.Errorf("abi: column field %d: fixed column needs a width", c.FieldID)
		}
		n := uint64(rows) * uint64(w)
		if uint64(len(c.Values)) != n {
			return 0, fmt.Errorf("abi: column field %d (%s): %d value bytes for %d rows of width %d, want %d", c.FieldID, c.Type, len(c.Values), rows, w, n)
		}
		return int(n), nil
	}
}

func alignUp(n uint64) uint64 { return (n + Align - 1) &^ (Align - 1) }

// EncodedSize returns the exact number of bytes EncodeInto writes for a batch
// of rows rows with these columns, or an error if the columns are
// inconsistent or the batch would exceed the 4 GiB offset space.
func EncodedSize(rows int, cols []ColumnData) (int, error) {
	if rows < 0 || rows > MaxBatchRows {
		return 0, fmt.Errorf("abi: batch of %d rows out of range [0, %d]", rows, MaxBatchRows)
	}
	n := uint64(HeaderSize) + uint64(len(cols))*ColumnEntrySize
	for i := range cols {
		vl, err := cols[i].valuesLen(rows)
		if err != nil {
			return 0, err
		}
		n = alignUp(n) + uint64(vl)
		if cols[i].Type.VarLen() {
			n = alignUp(n) + uint64(rows+1)*4
		}
		if cols[i].Validity != nil {
			n = alignUp(n) + uint64(rows+7)/8
		}
	}
	n = alignUp(n)
	if n > math.MaxUint32 {
		return 0, fmt.Errorf("abi: batch would be %d bytes, more than the 4 GiB v1 allows", n)
	}
	return int(n), nil
}

// Encode returns a freshly allocated, 8-byte-aligned encoded batch.
func Encode(h BatchHeader, cols []ColumnData) ([]byte, error) {
	n, err := EncodedSize(h.Rows, cols)
	if err != nil {
		return nil, err
	}
	buf := AlignedBytes(n)
	if _, err := EncodeInto(buf, h, cols); err != nil {
		return nil, err
	}
	return buf, nil
}

// AlignedBytes returns a zeroed byte slice of length n whose first byte is
// 8-byte aligned, as decoders expect for zero-copy typed views.
func AlignedBytes(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// EncodeInto writes the batch into dst, which must hold at least
// EncodedSize(h.Rows, cols) bytes (typically the host's view of a buffer the
// guest returned from compact_v1_alloc), and returns the number of bytes
// written. Every byte of dst[:n] is written, padding included, so reused
// memory never leaks stale bytes into a batch.
func EncodeInto(dst []byte, h BatchHeader, cols []ColumnData) (int, error) {
	n, err := EncodedSize(h.Rows, cols)
	if err != nil {
		return 0, err
	}
	if len(dst) < n {
		return 0, fmt.Errorf("abi: destination holds %d bytes, batch needs %d", len(dst), n)
	}
	if h.Kind != BatchRows && h.Kind != BatchDeletes {
		return 0, fmt.Errorf("abi: unknown batch kind %d", uint16(h.Kind))
	}
	dst = dst[:n]
	le := binary.LittleEndian
	le.PutUint32(dst[0:], BatchMagic)
	le.PutUint16(dst[4:], Version)
	le.PutUint16(dst[6:], uint16(h.Kind))
	le.PutUint32(dst[8:], h.Segment)
	le.PutUint32(dst[12:], uint32(h.Rows))
	le.PutUint64(dst[16:], h.FirstRow)
	le.PutUint32(dst[24:], uint32(len(cols)))
	le.PutUint32(dst[28:], uint32(n))

	pos := HeaderSize + len(cols)*ColumnEntrySize
	pad := func() int { // zero the gap up to the next aligned offset, return it
		a := int(alignUp(uint64(pos)))
		clear(dst[pos:a])
		pos = a
		return a
	}
	for i := range cols {
		c := &cols[i]
		e := dst[HeaderSize+i*ColumnEntrySize:]
		le.PutUint64(e[0:], uint64(c.FieldID))
		e[8] = byte(c.Type)
		var flags uint8
		if c.Nullable || c.Validity != nil {
			flags |= FlagNullable
		}
		e[9] = flags
		le.PutUint16(e[10:], 0)
		w := c.width()
		if c.Type.VarLen() {
			w = 0
		}
		le.PutUint32(e[12:], w)

		valOff := pad()
		switch {
		case c.Type.VarLen():
			base := c.Offsets[0]
			pos += copy(dst[pos:], c.Values[base:c.Offsets[h.Rows]])
			le.PutUint32(e[20:], uint32(pos-valOff))
			offOff := pad()
			for _, o := range c.Offsets {
				le.PutUint32(dst[pos:], uint32(o-base))
				pos += 4
			}
			le.PutUint32(e[24:], uint32(offOff))
		case c.Type == TypeBool:
			for r := 0; r < h.Rows; r++ {
				dst[pos+r] = bitAt(c.Values, c.BitOffset+r)
			}
			pos += h.Rows
			le.PutUint32(e[20:], uint32(h.Rows))
			le.PutUint32(e[24:], 0)
		default:
			pos += copy(dst[pos:], c.Values)
			le.PutUint32(e[20:], uint32(pos-valOff))
			le.PutUint32(e[24:], 0)
		}
		le.PutUint32(e[16:], uint32(valOff))
		if c.Validity == nil {
			le.PutUint32(e[28:], 0)
			continue
		}
		vOff := pad()
		pos += copyBits(dst[pos:pos+(h.Rows+7)/8], c.Validity, c.BitOffset, h.Rows)
		le.PutUint32(e[28:], uint32(vOff))
	}
	pad()
	if pos != n {
		return 0, fmt.Errorf("abi: internal error: wrote %d bytes, expected %d", pos, n)
	}
	return n, nil
}

func bitAt(b []byte, i int) byte { return (b[i>>3] >> (i & 7)) & 1 }

// copyBits copies rows bits starting at bit off of src into dst starting at
// bit 0, zeroing the unused high bits of the last byte. It returns len(dst).
func copyBits(dst, src []byte, off, rows int) int {
	if off&7 == 0 {
		copy(dst, src[off>>3:])
	} else {
		clear(dst)
		for r := 0; r < rows; r++ {
			dst[r>>3] |= bitAt(src, off+r) << (r & 7)
		}
	}
	if rem := rows & 7; rem != 0 {
		dst[len(dst)-1] &= byte(1<<rem) - 1
	}
	return len(dst)
}
