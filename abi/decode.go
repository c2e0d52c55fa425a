package abi

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Batch is a decoded rows or deletes batch. It is a set of views into the
// buffer it was decoded from: nothing is copied, and every slice it returns
// is valid only while that buffer is (for a guest: until the export that
// received it returns). Copy what you keep.
type Batch struct {
	Kind     BatchKind
	Segment  uint32 // index into Task.Segments
	FirstRow uint64 // first row index in the segment (rows) or global delete index (deletes)
	Rows     int
	cols     []Column
	buf      []byte
}

// Column is a read-only view of one decoded column.
type Column struct {
	FieldID  int64
	Type     Type
	Width    int  // bytes per row for fixed-width types, 0 for string/binary
	Nullable bool // the field is nullable (it may still have no validity bitmap)
	rows     int
	values   []byte
	offsets  []byte // (rows+1) little-endian u32, var-length types only
	validity []byte // nil = all valid
}

// DecodeBatch validates buf as an encoded batch and returns views into it.
// If buf does not start at an 8-byte-aligned address it is copied once so
// that typed views are aligned.
func DecodeBatch(buf []byte) (*Batch, error) {
	b := new(Batch)
	if err := b.Reset(buf); err != nil {
		return nil, err
	}
	return b, nil
}

// Reset decodes buf into b, reusing b's column storage. On error b is left
// empty.
func (b *Batch) Reset(buf []byte) error {
	cols := b.cols[:0]
	*b = Batch{cols: cols}
	if err := b.decode(buf); err != nil {
		b.cols = cols[:0]
		b.Rows, b.FirstRow, b.Segment, b.Kind, b.buf = 0, 0, 0, 0, nil
		return err
	}
	return nil
}

func (b *Batch) decode(buf []byte) error {
	le := binary.LittleEndian
	if len(buf) < HeaderSize {
		return fmt.Errorf("abi: batch of %d bytes is shorter than the %d-byte header", len(buf), HeaderSize)
	}
	if m := le.Uint32(buf); m != BatchMagic {
		return fmt.Errorf("abi: batch magic %#08x, want %#08x (\"CHB1\")", m, BatchMagic)
	}
	if v := le.Uint16(buf[4:]); v != Version {
		return fmt.Errorf("abi: batch version %d, want %d", v, Version)
	}
	kind := BatchKind(le.Uint16(buf[6:]))
	if kind != BatchRows && kind != BatchDeletes {
		return fmt.Errorf("abi: unknown batch kind %d", uint16(kind))
	}
	rows := le.Uint32(buf[12:])
	if rows > MaxBatchRows {
		return fmt.Errorf("abi: batch claims %d rows, more than %d", rows, MaxBatchRows)
	}
	ncols := le.Uint32(buf[24:])
	total := le.Uint32(buf[28:])
	if uint64(total) != uint64(len(buf)) {
		return fmt.Errorf("abi: batch header says %d bytes, buffer has %d", total, len(buf))
	}
	tableEnd := uint64(HeaderSize) + uint64(ncols)*ColumnEntrySize
	if tableEnd > uint64(len(buf)) {
		return fmt.Errorf("abi: %d column entries do not fit in a %d-byte batch", ncols, len(buf))
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%Align != 0 {
		c := AlignedBytes(len(buf))
		copy(c, buf)
		buf = c
	}
	b.Kind, b.Segment, b.Rows, b.FirstRow, b.buf = kind, le.Uint32(buf[8:]), int(rows), le.Uint64(buf[16:]), buf
	if cap(b.cols) < int(ncols) {
		b.cols = make([]Column, 0, ncols)
	}
	for i := 0; i < int(ncols); i++ {
		c, err := decodeColumn(buf, buf[HeaderSize+i*ColumnEntrySize:], int(rows), tableEnd)
		if err != nil {
			return fmt.Errorf("abi: batch column %d: %w", i, err)
		}
		b.cols = append(b.cols, c)
	}
	return nil
}

// region returns buf[off:off+n] after checking alignment and bounds.
func region(buf []byte, what string, off uint32, n uint64, tableEnd uint64) ([]byte, error) {
	if off%Align != 0 {
		return nil, fmt.Errorf("%s offset %d is not %d-byte aligned", what, off, Align)
	}
	if uint64(off) < tableEnd {
		return nil, fmt.Errorf("%s offset %d overlaps the header or column table (ends at %d)", what, off, tableEnd)
	}
	if uint64(off)+n > uint64(len(buf)) {
		return nil, fmt.Errorf("%s region [%d, %d) runs past the %d-byte batch", what, off, uint64(off)+n, len(buf))
	}
	return buf[off : uint64(off)+n : uint64(off)+n], nil
}

func decodeColumn(buf, e []byte, rows int, tableEnd uint64) (Column, error) {
	le := binary.LittleEndian
	c := Column{FieldID: int64(le.Uint64(e)), Type: Type(e[8]), rows: rows}
	flags, reserved, width := e[9], le.Uint16(e[10:]), le.Uint32(e[12:])
	valOff, valLen, offOff, validOff := le.Uint32(e[16:]), le.Uint32(e[20:]), le.Uint32(e[24:]), le.Uint32(e[28:])
	if !c.Type.Valid() {
		return c, fmt.Errorf("field %d: unknown type code %d", c.FieldID, e[8])
	}
	if flags&^FlagNullable != 0 || reserved != 0 {
		return c, fmt.Errorf("field %d: reserved flag bits %#x / bytes %#x are not zero", c.FieldID, flags&^FlagNullable, reserved)
	}
	c.Nullable = flags&FlagNullable != 0
	var err error
	if c.Type.VarLen() {
		if width != 0 {
			return c, fmt.Errorf("field %d (%s): width %d, want 0", c.FieldID, c.Type, width)
		}
		if c.values, err = region(buf, "values", valOff, uint64(valLen), tableEnd); err != nil {
			return c, fmt.Errorf("field %d: %w", c.FieldID, err)
		}
		if c.offsets, err = region(buf, "offsets", offOff, uint64(rows+1)*4, tableEnd); err != nil {
			return c, fmt.Errorf("field %d: %w", c.FieldID, err)
		}
		prev := uint32(0)
		if first := le.Uint32(c.offsets); first != 0 {
			return c, fmt.Errorf("field %d: first offset is %d, want 0", c.FieldID, first)
		}
		for i := 1; i <= rows; i++ {
			o := le.Uint32(c.offsets[i*4:])
			if o < prev {
				return c, fmt.Errorf("field %d: offset %d (%d) is below offset %d (%d)", c.FieldID, i, o, i-1, prev)
			}
			prev = o
		}
		if prev != valLen {
			return c, fmt.Errorf("field %d: last offset %d does not match the %d value bytes", c.FieldID, prev, valLen)
		}
	} else {
		want := c.Type.FixedWidth()
		if c.Type == TypeFixed {
			want = width
		}
		if width == 0 || width != want {
			return c, fmt.Errorf("field %d (%s): width %d, want %d", c.FieldID, c.Type, width, want)
		}
		c.Width = int(width)
		if n := uint64(rows) * uint64(width); uint64(valLen) != n {
			return c, fmt.Errorf("field %d: %d value bytes for %d rows of width %d", c.FieldID, valLen, rows, width)
		}
		if offOff != 0 {
			return c, fmt.Errorf("field %d (%s): fixed-width column has an offsets region", c.FieldID, c.Type)
		}
		if c.values, err = region(buf, "values", valOff, uint64(valLen), tableEnd); err != nil {
			return c, fmt.Errorf("field %d: %w", c.FieldID, err)
		}
		if c.Type == TypeBool {
			for i, v := range c.values {
				if v > 1 {
					return c, fmt.Errorf("field %d: bool row %d holds %d, want 0 or 1", c.FieldID, i, v)
				}
			}
		}
	}
	if validOff != 0 {
		if !c.Nullable {
			return c, fmt.Errorf("field %d: validity bitmap on a column not flagged nullable", c.FieldID)
		}
		if c.validity, err = region(buf, "validity", validOff, uint64(rows+7)/8, tableEnd); err != nil {
			return c, fmt.Errorf("field %d: %w", c.FieldID, err)
		}
	}
	return c, nil
}

// NumColumns returns the number of columns.
func (b *Batch) NumColumns() int { return len(b.cols) }

// Column returns the i-th column (0 <= i < NumColumns).
func (b *Batch) Column(i int) *Column { return &b.cols[i] }

// Field returns the column of field id, or nil if the batch has none.
func (b *Batch) Field(id int64) *Column {
	for i := range b.cols {
		if b.cols[i].FieldID == id {
			return &b.cols[i]
		}
	}
	return nil
}

// RowSizes returns the synthetic row-size column (field -1) or nil.
func (b *Batch) RowSizes() []uint32 {
	c := b.Field(FieldIDRowSize)
	if c == nil || c.Type != TypeUint32 {
		return nil
	}
	return c.Uint32s()
}

// Bytes returns the encoded batch the views point into.
func (b *Batch) Bytes() []byte { return b.buf }

// Deletes is a decoded deletes batch: column 0 holds primary keys (int64 or
// string), column 1 the delete timestamps (int64, field 1). Delete record i of
// the batch has the global delete index FirstRow+i.
type Deletes struct {
	Batch
}

// DecodeDeletes decodes and checks a deletes batch.
func DecodeDeletes(buf []byte) (*Deletes, error) {
	d := new(Deletes)
	if err := d.Reset(buf); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset decodes buf into d, reusing storage.
func (d *Deletes) Reset(buf []byte) error {
	if err := d.Batch.Reset(buf); err != nil {
		return err
	}
	if err := d.check(); err != nil {
		_ = d.Batch.Reset(nil)
		return err
	}
	return nil
}

func (d *Deletes) check() error {
	if d.Kind != BatchDeletes {
		return fmt.Errorf("abi: deletes call got a %s batch", d.Kind)
	}
	if len(d.cols) != 2 {
		return fmt.Errorf("abi: deletes batch has %d columns, want 2 (pk, ts)", len(d.cols))
	}
	pk, ts := &d.cols[0], &d.cols[1]
	if pk.Type != TypeInt64 && pk.Type != TypeString {
		return fmt.Errorf("abi: deletes batch pk column is %s, want int64 or string", pk.Type)
	}
	if ts.Type != TypeInt64 || ts.FieldID != FieldIDTimestamp {
		return fmt.Errorf("abi: deletes batch column 1 is field %d of type %s, want field 1 of type int64", ts.FieldID, ts.Type)
	}
	if pk.validity != nil || ts.validity != nil {
		return fmt.Errorf("abi: deletes batch columns must not have nulls")
	}
	return nil
}

// PKs returns the primary-key column.
func (d *Deletes) PKs() *Column { return &d.cols[0] }

// Timestamps returns the delete timestamps.
func (d *Deletes) Timestamps() []int64 { return d.cols[1].Int64s() }
