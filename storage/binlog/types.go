package binlog

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Dim returns the vector dimension from the field's "dim" type param.
func Dim(f *schemapb.FieldSchema) (int, error) {
	for _, kv := range f.GetTypeParams() {
		if kv.GetKey() == "dim" {
			d, err := strconv.Atoi(kv.GetValue())
			if err != nil || d <= 0 {
				return 0, fmt.Errorf("field %d (%s): dim %q is not a positive integer", f.GetFieldID(), f.GetName(), kv.GetValue())
			}
			return d, nil
		}
	}
	return 0, fmt.Errorf("field %d (%s): %s has no \"dim\" type param", f.GetFieldID(), f.GetName(), f.GetDataType())
}

// ArrowType returns the Arrow type Milvus' record writer uses for the field's
// payload column (milvus-formats.md §9.5). Vector widths derive from dim:
// FloatVector dim×4, Float16/BFloat16Vector dim×2, Int8Vector dim,
// BinaryVector (dim+7)/8 bytes. Array (protobuf ScalarField per row), JSON and
// SparseFloatVector (index/value pairs) are opaque Binary.
func ArrowType(f *schemapb.FieldSchema) (arrow.DataType, error) {
	switch f.GetDataType() {
	case schemapb.DataType_Bool:
		return arrow.FixedWidthTypes.Boolean, nil
	case schemapb.DataType_Int8:
		return arrow.PrimitiveTypes.Int8, nil
	case schemapb.DataType_Int16:
		return arrow.PrimitiveTypes.Int16, nil
	case schemapb.DataType_Int32:
		return arrow.PrimitiveTypes.Int32, nil
	case schemapb.DataType_Int64, schemapb.DataType_Timestamptz:
		return arrow.PrimitiveTypes.Int64, nil
	case schemapb.DataType_Float:
		return arrow.PrimitiveTypes.Float32, nil
	case schemapb.DataType_Double:
		return arrow.PrimitiveTypes.Float64, nil
	case schemapb.DataType_String, schemapb.DataType_VarChar, schemapb.DataType_Text:
		return arrow.BinaryTypes.String, nil
	case schemapb.DataType_Array, schemapb.DataType_JSON, schemapb.DataType_SparseFloatVector:
		return arrow.BinaryTypes.Binary, nil
	case schemapb.DataType_BinaryVector, schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
		dim, err := Dim(f)
		if err != nil {
			return nil, err
		}
		return &arrow.FixedSizeBinaryType{ByteWidth: vectorWidth(f.GetDataType(), dim)}, nil
	}
	return nil, fmt.Errorf("field %d (%s): data type %s is not supported in binlogs", f.GetFieldID(), f.GetName(), f.GetDataType())
}

func vectorWidth(t schemapb.DataType, dim int) int {
	switch t {
	case schemapb.DataType_BinaryVector:
		return (dim + 7) / 8
	case schemapb.DataType_FloatVector:
		return dim * 4
	case schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
		return dim * 2
	}
	return dim // Int8Vector
}

// ExpansionRatio is the factor Milvus's record writer applies to an Array
// field's running size: 2 for Int16 elements, 4 for Int32, 8 for Int64 and
// Timestamptz, else 1. The column holds protobuf ScalarFields whose integers
// are varint-packed, and the factor stands in for their decoded width
// (internal/storage/serde.go, newSingleFieldRecordWriter). Milvus compares
// the scaled size with binlog_max_size to flush a chunk, but records the
// unscaled one (MemorySize) as memory_size and original_size.
func ExpansionRatio(f *schemapb.FieldSchema) int64 {
	if f.GetDataType() != schemapb.DataType_Array {
		return 1
	}
	switch f.GetElementType() {
	case schemapb.DataType_Int16:
		return 2
	case schemapb.DataType_Int32:
		return 4
	case schemapb.DataType_Int64, schemapb.DataType_Timestamptz:
		return 8
	}
	return 1
}

// MemorySize is what Milvus records as a binlog's memory_size and its
// original_size extra: the Arrow bytes col's rows occupy (correct for sliced
// arrays, as Milvus's ActualSizeInBytes is; a validity bitmap counts when
// present). It is also the column's true in-memory size. Array fields are
// not scaled by ExpansionRatio here: Milvus's stream writer records the
// unscaled sum (serde_events.go, BinlogStreamWriter.Finalize).
func MemorySize(col arrow.Array) int64 {
	return dataSize(col.Data())
}

// MemorySizeChunks is MemorySize of the chunks concatenated (what
// array.Concatenate would return: a validity bitmap only when some chunk
// has a null), without concatenating them: bit-packed and offset buffers
// are counted once for all rows, not rounded or started per chunk. The
// chunks must share one type.
func MemorySizeChunks(chunks []arrow.Array) int64 {
	if len(chunks) == 1 {
		return MemorySize(chunks[0])
	}
	var size, rows, offsetArrays int64
	nulls := false
	for _, c := range chunks {
		v := valuesSize(c.Data())
		size += v
		rows += int64(c.Len())
		nulls = nulls || c.NullN() > 0
		if v > 0 {
			offsetArrays++
		}
	}
	switch t := chunks[0].DataType().(type) {
	case *arrow.BooleanType:
		size = bitutil.BytesForBits(rows)
	case arrow.FixedWidthDataType:
		size = rows * int64(t.BitWidth()/8)
	case *arrow.StringType, *arrow.BinaryType:
		size -= max(offsetArrays-1, 0) * 4 // one offsets array of rows+1 entries
	}
	if nulls {
		size += bitutil.BytesForBits(rows)
	}
	return size
}

func dataSize(d arrow.ArrayData) int64 {
	size := valuesSize(d)
	if bufs := d.Buffers(); len(bufs) > 0 && bufs[0] != nil {
		size += bitutil.BytesForBits(int64(d.Len()))
	}
	return size
}

// valuesSize is dataSize without the validity bitmap.
func valuesSize(d arrow.ArrayData) int64 {
	n := int64(d.Len())
	bufs := d.Buffers()
	var size int64
	has := func(i int) bool { return len(bufs) > i && bufs[i] != nil }
	switch t := d.DataType().(type) {
	case *arrow.BooleanType:
		if has(1) {
			size += bitutil.BytesForBits(n)
		}
	case arrow.FixedWidthDataType:
		if has(1) {
			size += n * int64(t.BitWidth()/8)
		}
	case *arrow.StringType, *arrow.BinaryType:
		if has(1) && has(2) {
			size += (n + 1) * 4
			offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())
			if off := d.Offset(); off+int(n) < len(offs) {
				size += int64(offs[off+int(n)] - offs[off])
			}
		}
	default:
		for _, b := range bufs[min(1, len(bufs)):] {
			if b != nil {
				size += int64(b.Len())
			}
		}
	}
	return size
}
