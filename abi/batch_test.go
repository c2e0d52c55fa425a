package abi

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"unsafe"
)

// sampleColumns returns a 5-row batch covering every layout: fixed, bool
// bitmap with a bit offset, nullable string with a bit offset, fixed-size
// binary and the row-size column.
func sampleColumns() (BatchHeader, []ColumnData) {
	h := BatchHeader{Kind: BatchRows, Segment: 2, FirstRow: 4096, Rows: 5}
	pk := Int64Data(100, []int64{10, -3, math.MaxInt64, 0, 7})
	ts := Int64Data(FieldIDTimestamp, []int64{1, 2, 3, 4, 5})
	size := RowSizeData([]uint32{40, 41, 42, 43, 44})
	// strings "xx" + ["ab", "", null, "héllo", "z"] (offsets start at 2)
	str := ColumnData{FieldID: 101, Type: TypeString, Nullable: true,
		Values:  []byte("xxabhéllo" + "z"),
		Offsets: []int32{2, 4, 4, 4, 10, 11},
		// bit offset 3: rows 0..4 are bits 3..7; row 2 null
		Validity: []byte{0b11011000}, BitOffset: 3}
	// bools [1,0,1,1,0] at bit offset 1
	b := ColumnData{FieldID: 102, Type: TypeBool, Values: []byte{0b00011010}, BitOffset: 1}
	vec := ColumnData{FieldID: 103, Type: TypeFixed, Width: 3, Values: []byte("aaabbbcccdddeee")}
	f := ColumnData{FieldID: 104, Type: TypeFloat32, Values: make([]byte, 20)}
	binary.LittleEndian.PutUint32(f.Values[4:], math.Float32bits(1.5))
	return h, []ColumnData{pk, ts, size, str, b, vec, f}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	h, cols := sampleColumns()
	buf, err := Encode(h, cols)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := EncodedSize(h.Rows, cols)
	if len(buf) != n || n%Align != 0 {
		t.Fatalf("encoded %d bytes, EncodedSize %d", len(buf), n)
	}
	b, err := DecodeBatch(buf)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != BatchRows || b.Segment != 2 || b.FirstRow != 4096 || b.Rows != 5 || b.NumColumns() != 7 {
		t.Fatalf("header: %+v", b)
	}
	if got := b.Field(100).Int64s(); got[2] != math.MaxInt64 || got[1] != -3 {
		t.Fatalf("pk = %v", got)
	}
	if got := b.RowSizes(); len(got) != 5 || got[4] != 44 {
		t.Fatalf("row sizes = %v", got)
	}
	s := b.Field(101)
	var strs []string
	for i := 0; i < s.Len(); i++ {
		if s.IsNull(i) {
			strs = append(strs, "<null>")
		} else {
			strs = append(strs, s.String(i))
		}
	}
	if got := strings.Join(strs, ","); got != "ab,,<null>,héllo,z" || !s.HasNulls() || !s.Nullable {
		t.Fatalf("strings = %q", got)
	}
	if got := b.Field(102).Bools(); got[0] != true || got[1] != false || got[2] != true || got[3] != true || got[4] != false {
		t.Fatalf("bools = %v", got)
	}
	if got := string(b.Field(103).Bytes(3)); got != "ddd" {
		t.Fatalf("vector row 3 = %q", got)
	}
	if got := b.Field(104).Float32s(); got[1] != 1.5 {
		t.Fatalf("floats = %v", got)
	}
	if b.Field(999) != nil {
		t.Fatal("absent field found")
	}
	// Every region is 8-byte aligned relative to the batch start.
	for i := 0; i < b.NumColumns(); i++ {
		c := b.Column(i)
		for _, r := range [][]byte{c.values, c.offsets, c.validity} {
			if len(r) > 0 && (uintptr(unsafe.Pointer(&r[0]))-uintptr(unsafe.Pointer(&buf[0])))%Align != 0 {
				t.Fatalf("column %d has an unaligned region", i)
			}
		}
	}
	// Re-encoding the decoded columns gives the same bytes.
	var again []ColumnData
	for i := 0; i < b.NumColumns(); i++ {
		again = append(again, b.Column(i).Data())
	}
	buf2, err := Encode(h, again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, buf2) {
		t.Fatal("re-encoding a decoded batch changed its bytes")
	}
}

func TestEncodeIntoOverwritesEveryByte(t *testing.T) {
	h, cols := sampleColumns()
	want, _ := Encode(h, cols)
	dst := AlignedBytes(len(want) + 16)
	for i := range dst {
		dst[i] = 0xEE
	}
	n, err := EncodeInto(dst, h, cols)
	if err != nil || n != len(want) {
		t.Fatalf("EncodeInto = %d, %v", n, err)
	}
	if !bytes.Equal(dst[:n], want) {
		t.Fatal("EncodeInto left stale bytes in padding")
	}
	if _, err := EncodeInto(dst[:n-1], h, cols); err == nil || !strings.Contains(err.Error(), "destination holds") {
		t.Fatalf("short destination: %v", err)
	}
}

func TestDecodeUnalignedCopies(t *testing.T) {
	h, cols := sampleColumns()
	buf, _ := Encode(h, cols)
	raw := make([]byte, len(buf)+1)
	copy(raw[1:], buf)
	b, err := DecodeBatch(raw[1:])
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Field(100).Int64s()[4]; got != 7 {
		t.Fatalf("pk[4] = %d", got)
	}
}

func TestEncodeRejectsInconsistentColumns(t *testing.T) {
	cases := []struct {
		name string
		col  ColumnData
		want string
	}{
		{"short int64", ColumnData{FieldID: 1, Type: TypeInt64, Values: make([]byte, 7)}, "7 value bytes for 1 rows"},
		{"fixed without width", ColumnData{FieldID: 1, Type: TypeFixed, Values: make([]byte, 4)}, "needs a width"},
		{"offsets count", ColumnData{FieldID: 1, Type: TypeString, Offsets: []int32{0}}, "1 offsets for 1 rows"},
		{"offsets past values", ColumnData{FieldID: 1, Type: TypeBinary, Values: []byte("a"), Offsets: []int32{0, 5}}, "outside 1 value bytes"},
		{"unknown type", ColumnData{FieldID: 1, Type: 77}, "unknown type code 77"},
		{"short validity", ColumnData{FieldID: 1, Type: TypeInt8, Values: []byte{1}, Validity: []byte{}}, "validity bitmap has 0 bits"},
	}
	for _, c := range cases {
		_, err := Encode(BatchHeader{Kind: BatchRows, Rows: 1}, []ColumnData{c.col})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Encode(BatchHeader{Kind: 9, Rows: 0}, nil); err == nil || !strings.Contains(err.Error(), "unknown batch kind 9") {
		t.Errorf("bad kind: %v", err)
	}
}

// mutate returns a copy of a valid batch with one change applied.
func mutate(t *testing.T, f func(b []byte) []byte) []byte {
	h, cols := sampleColumns()
	buf, err := Encode(h, cols)
	if err != nil {
		t.Fatal(err)
	}
	c := AlignedBytes(len(buf))
	copy(c, buf)
	return f(c)
}

func TestDecodeRejectsMalformed(t *testing.T) {
	le := binary.LittleEndian
	col := func(i int) int { return HeaderSize + i*ColumnEntrySize } // entry offset
	cases := []struct {
		name string
		f    func(b []byte) []byte
		want string
	}{
		{"short", func(b []byte) []byte { return b[:10] }, "shorter than the 32-byte header"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, "batch magic"},
		{"version", func(b []byte) []byte { le.PutUint16(b[4:], 2); return b }, "batch version 2"},
		{"kind", func(b []byte) []byte { le.PutUint16(b[6:], 5); return b }, "unknown batch kind 5"},
		{"rows huge", func(b []byte) []byte { le.PutUint32(b[12:], 1<<30); return b }, "claims 1073741824 rows"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-8] }, "header says"},
		{"columns overflow", func(b []byte) []byte { le.PutUint32(b[24:], 1<<30); return b }, "column entries do not fit"},
		{"type", func(b []byte) []byte { b[col(0)+8] = 0; return b }, "unknown type code 0"},
		{"flags", func(b []byte) []byte { b[col(0)+9] = 0x80; return b }, "reserved flag bits"},
		{"width", func(b []byte) []byte { le.PutUint32(b[col(0)+12:], 4); return b }, "width 4, want 8"},
		{"values unaligned", func(b []byte) []byte { le.PutUint32(b[col(0)+16:], le.Uint32(b[col(0)+16:])+1); return b }, "not 8-byte aligned"},
		{"values in table", func(b []byte) []byte { le.PutUint32(b[col(0)+16:], 32); return b }, "overlaps the header"},
		{"values past end", func(b []byte) []byte { le.PutUint32(b[col(0)+16:], 0xFFFFFFF8); return b }, "runs past"},
		{"values length", func(b []byte) []byte { le.PutUint32(b[col(0)+20:], 8); return b }, "8 value bytes for 5 rows"},
		{"fixed with offsets", func(b []byte) []byte { le.PutUint32(b[col(0)+24:], 8); return b }, "has an offsets region"},
		{"offsets decrease", func(b []byte) []byte {
			off := le.Uint32(b[col(3)+24:])
			le.PutUint32(b[off+8:], 1) // offsets become 0,2,1,...
			return b
		}, "is below offset"},
		{"first offset", func(b []byte) []byte { off := le.Uint32(b[col(3)+24:]); le.PutUint32(b[off:], 1); return b }, "first offset is 1"},
		{"last offset", func(b []byte) []byte { le.PutUint32(b[col(3)+20:], 8); return b }, "does not match the 8 value bytes"},
		{"bool value", func(b []byte) []byte { off := le.Uint32(b[col(4)+16:]); b[off+1] = 2; return b }, "holds 2, want 0 or 1"},
		{"validity not nullable", func(b []byte) []byte { b[col(3)+9] = 0; return b }, "not flagged nullable"},
		{"validity past end", func(b []byte) []byte { le.PutUint32(b[col(3)+28:], uint32(len(b))); return b }, "runs past"},
	}
	for _, c := range cases {
		_, err := DecodeBatch(mutate(t, c.f))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestDeletes(t *testing.T) {
	h := BatchHeader{Kind: BatchDeletes, Segment: 1, FirstRow: 100, Rows: 3}
	buf, err := Encode(h, []ColumnData{StringData(100, []string{"a", "bb", "c"}), Int64Data(FieldIDTimestamp, []int64{5, 6, 7})})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDeletes(buf)
	if err != nil {
		t.Fatal(err)
	}
	if d.PKs().String(1) != "bb" || d.Timestamps()[2] != 7 || d.FirstRow != 100 {
		t.Fatalf("deletes decoded wrong: %q %v", d.PKs().String(1), d.Timestamps())
	}
	rows, _ := Encode(BatchHeader{Kind: BatchRows, Rows: 0}, nil)
	if _, err := DecodeDeletes(rows); err == nil || !strings.Contains(err.Error(), "deletes call got a rows batch") {
		t.Fatalf("rows batch as deletes: %v", err)
	}
	bad, _ := Encode(BatchHeader{Kind: BatchDeletes, Rows: 1}, []ColumnData{Int64Data(100, []int64{1}), Int64Data(7, []int64{1})})
	if _, err := DecodeDeletes(bad); err == nil || !strings.Contains(err.Error(), "want field 1 of type int64") {
		t.Fatalf("wrong ts field: %v", err)
	}
}

func TestTypedViewMismatchPanicsWithMessage(t *testing.T) {
	h, cols := sampleColumns()
	buf, _ := Encode(h, cols)
	b, _ := DecodeBatch(buf)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "field 101 is string, not int64") {
			t.Fatalf("recovered %v", r)
		}
	}()
	b.Field(101).Int64s()
}
