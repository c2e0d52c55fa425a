package segread

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// fixedWidth returns the per-row byte count of a fixed-width field, or
// false for variable-length types.
func fixedWidth(f *schemapb.FieldSchema) (int, bool) {
	switch f.GetDataType() {
	case schemapb.DataType_Bool, schemapb.DataType_Int8:
		return 1, true
	case schemapb.DataType_Int16:
		return 2, true
	case schemapb.DataType_Int32, schemapb.DataType_Float:
		return 4, true
	case schemapb.DataType_Int64, schemapb.DataType_Double, schemapb.DataType_Timestamptz:
		return 8, true
	case schemapb.DataType_BinaryVector, schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
		if t, err := binlog.ArrowType(f); err == nil {
			return t.(*arrow.FixedSizeBinaryType).ByteWidth, true
		}
		return 0, true
	}
	return 0, false
}

// RowSizes returns the size of each of the first n rows of cols under the
// pipeline's shared definition: the sum over every schema field of its
// fixed width (Bool and Int8 1, Int16 2, Int32 and Float 4, Int64, Double
// and Timestamptz 8, vectors their byte width; nulls included), or, for
// VarChar, String, Text, JSON, Array and SparseFloatVector, the value's byte
// length plus 4 (a null counts 4: its offset). Validity bitmaps are not
// counted. A field missing from cols counts as all nulls.
func RowSizes(schema *schemapb.CollectionSchema, cols map[int64]arrow.Array, n int) []uint32 {
	sizes := make([]uint32, n)
	var fixed uint32
	for _, f := range schema.GetFields() {
		if w, ok := fixedWidth(f); ok {
			fixed += uint32(w)
			continue
		}
		fixed += 4
		var offs []int32
		var valid func(int) bool
		switch c := cols[f.GetFieldID()].(type) {
		case *array.String:
			offs, valid = c.ValueOffsets(), c.IsValid
		case *array.Binary:
			offs, valid = c.ValueOffsets(), c.IsValid
		default:
			continue
		}
		m := min(n, len(offs)-1)
		for i := range m {
			if valid(i) {
				sizes[i] += uint32(offs[i+1] - offs[i])
			}
		}
	}
	for i := range sizes {
		sizes[i] += fixed
	}
	return sizes
}
