package abiarrow_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/abiarrow"
)

func TestColumnsRoundTripSliced(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)

	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, nil)
	ints := ib.NewArray()
	defer ints.Release()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"zero", "one", "", "three", "four", "five", "six", "seven", "eight", "nine"},
		[]bool{true, true, true, false, true, true, true, true, true, true})
	strs := sb.NewArray()
	defer strs.Release()
	bb := array.NewBooleanBuilder(mem)
	bb.AppendValues([]bool{true, false, true, true, false, false, true, false, true, true}, nil)
	bools := bb.NewArray()
	defer bools.Release()
	fb := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 4})
	for i := range 10 {
		fb.Append([]byte{byte(i), 0, 0, byte(i)})
	}
	vecs := fb.NewArray()
	defer vecs.Release()

	// Slice every array to rows [1, 6) so offsets and bit offsets matter.
	var arrs []arrow.Array
	for _, a := range []arrow.Array{ints, strs, bools, vecs} {
		s := array.NewSlice(a, 1, 6)
		defer s.Release()
		arrs = append(arrs, s)
	}
	cols, err := abiarrow.Columns([]int64{100, 101, 102, 103}, arrs, []uint32{10, 11, 12, 13, 14})
	if err != nil {
		t.Fatal(err)
	}
	buf, err := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Rows: 5}, cols)
	if err != nil {
		t.Fatal(err)
	}
	b, err := abi.DecodeBatch(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(b.Field(100).Int64s()); got != "[8 7 6 5 4]" {
		t.Fatalf("ints %s", got)
	}
	s := b.Field(101)
	var got []string
	for i := range s.Len() {
		if s.IsNull(i) {
			got = append(got, "null")
		} else {
			got = append(got, s.String(i))
		}
	}
	if strings.Join(got, ",") != "one,,null,four,five" || !s.Nullable {
		t.Fatalf("strings %q", got)
	}
	if got := fmt.Sprint(b.Field(102).Bools()); got != "[false true true false false]" {
		t.Fatalf("bools %s", got)
	}
	if got := b.Field(103).Bytes(4); got[0] != 5 || got[3] != 5 {
		t.Fatalf("vector row 4 = %v", got)
	}
	if got := fmt.Sprint(b.RowSizes()); got != "[10 11 12 13 14]" {
		t.Fatalf("row sizes %s", got)
	}
}

func TestColumnErrors(t *testing.T) {
	mem := memory.DefaultAllocator
	lb := array.NewLargeStringBuilder(mem)
	lb.Append("x")
	large := lb.NewArray()
	defer large.Release()
	if _, err := abiarrow.Column(5, large); err == nil || !strings.Contains(err.Error(), "field 5: Arrow type large_utf8 has no ABI v1 column encoding") {
		t.Fatalf("large string: %v", err)
	}
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{1, 2}, nil)
	two := ib.NewArray()
	defer two.Release()
	ib.AppendValues([]int64{1}, nil)
	one := ib.NewArray()
	defer one.Release()
	if _, err := abiarrow.Columns([]int64{1, 2}, []arrow.Array{two, one}, nil); err == nil || !strings.Contains(err.Error(), "field 2 has 1 rows, field 1 has 2") {
		t.Fatalf("length mismatch: %v", err)
	}
	if _, err := abiarrow.Columns([]int64{1}, []arrow.Array{two}, []uint32{1}); err == nil || !strings.Contains(err.Error(), "1 row sizes for 2 rows") {
		t.Fatalf("row sizes mismatch: %v", err)
	}
}

// Example shows the host side of one batch: Arrow columns plus row sizes,
// encoded into a destination buffer (in the host, a view of guest memory
// returned by compact_v1_alloc).
func Example() {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{42, 43, 44}, nil)
	pk := b.NewArray()
	defer pk.Release()
	b.AppendValues([]int64{1000, 1001, 1002}, nil)
	ts := b.NewArray()
	defer ts.Release()

	cols, err := abiarrow.Columns([]int64{100, abi.FieldIDTimestamp}, []arrow.Array{pk, ts}, []uint32{64, 64, 64})
	if err != nil {
		panic(err)
	}
	h := abi.BatchHeader{Kind: abi.BatchRows, Segment: 0, FirstRow: 0, Rows: 3}
	size, _ := abi.EncodedSize(h.Rows, cols)
	dst := abi.AlignedBytes(size) // host: the guest's buffer
	n, err := abi.EncodeInto(dst, h, cols)
	if err != nil {
		panic(err)
	}
	batch, _ := abi.DecodeBatch(dst[:n])
	fmt.Println(n, batch.Field(100).Int64s(), batch.RowSizes())
	// Output: 192 [42 43 44] [64 64 64]
}

// TypeOf announces exactly the type and width Column produces.
func TestTypeOfMatchesColumn(t *testing.T) {
	mem := memory.DefaultAllocator
	fsb := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 12})
	fsb.Append(make([]byte, 12))
	arrs := []arrow.Array{
		array.NewBooleanBuilder(mem).NewArray(), array.NewInt8Builder(mem).NewArray(),
		array.NewInt16Builder(mem).NewArray(), array.NewInt32Builder(mem).NewArray(),
		array.NewInt64Builder(mem).NewArray(), array.NewUint32Builder(mem).NewArray(),
		array.NewFloat32Builder(mem).NewArray(), array.NewFloat64Builder(mem).NewArray(),
		array.NewStringBuilder(mem).NewArray(), array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary).NewArray(),
		fsb.NewArray(),
	}
	for _, a := range arrs {
		c, err := abiarrow.Column(7, a)
		if err != nil {
			t.Fatal(err)
		}
		typ, width, err := abiarrow.TypeOf(a.DataType())
		if err != nil || typ != c.Type || (typ == abi.TypeFixed && width != c.Width) {
			t.Errorf("%s: TypeOf = %v/%d (%v), Column made %v/%d", a.DataType(), typ, width, err, c.Type, c.Width)
		}
		a.Release()
	}
	if _, _, err := abiarrow.TypeOf(arrow.BinaryTypes.LargeString); err == nil {
		t.Error("TypeOf accepted large_string, which Column refuses")
	}
}
