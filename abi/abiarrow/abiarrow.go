// Package abiarrow describes Apache Arrow arrays (arrow-go) as ABI batch
// columns, so the host encodes its columns straight into guest memory with
// one copy and no intermediate buffers. It is host-side only: guests link
// package abi, which has no Arrow dependency.
package abiarrow

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/compacthost/compacthost/abi"
)

// Column describes arr as the column of field fieldID without copying: the
// returned ColumnData points into arr's buffers, so arr must stay alive (and
// unreleased) until the batch is encoded. Sliced arrays are handled. The
// column is flagged nullable when arr has nulls; set Nullable yourself to
// flag a nullable field whose batch happens to have none.
//
// Supported Arrow types: bool, int8, int16, int32, int64, uint32, float32,
// float64, string, binary and fixed_size_binary (vectors). Large string and
// binary arrays (int64 offsets) are refused.
func Column(fieldID int64, arr arrow.Array) (abi.ColumnData, error) {
	d := arr.Data()
	off, n := d.Offset(), d.Len()
	c := abi.ColumnData{FieldID: fieldID, BitOffset: off}
	bufs := d.Buffers()
	bytesOf := func(i int) []byte {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Bytes()
		}
		return []byte{}
	}
	fixed := func(t abi.Type, w int) error {
		c.Type, c.Width = t, uint32(w)
		b := bytesOf(1)
		if (off+n)*w > len(b) {
			return fmt.Errorf("abiarrow: field %d: %s values buffer has %d bytes, need %d", fieldID, arr.DataType(), len(b), (off+n)*w)
		}
		c.Values = b[off*w : (off+n)*w]
		return nil
	}
	var err error
	switch a := arr.(type) {
	case *array.Boolean:
		c.Type, c.Values = abi.TypeBool, bytesOf(1)
	case *array.Int8:
		err = fixed(abi.TypeInt8, 1)
	case *array.Int16:
		err = fixed(abi.TypeInt16, 2)
	case *array.Int32:
		err = fixed(abi.TypeInt32, 4)
	case *array.Int64:
		err = fixed(abi.TypeInt64, 8)
	case *array.Uint32:
		err = fixed(abi.TypeUint32, 4)
	case *array.Float32:
		err = fixed(abi.TypeFloat32, 4)
	case *array.Float64:
		err = fixed(abi.TypeFloat64, 8)
	case *array.FixedSizeBinary:
		w := a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth
		err = fixed(abi.TypeFixed, w)
	case *array.String:
		c.Type, c.Values, c.Offsets = abi.TypeString, bytesOf(2), varOffsets(a.ValueOffsets(), n)
	case *array.Binary:
		c.Type, c.Values, c.Offsets = abi.TypeBinary, bytesOf(2), varOffsets(a.ValueOffsets(), n)
	default:
		return abi.ColumnData{}, fmt.Errorf("abiarrow: field %d: Arrow type %s has no ABI v1 column encoding", fieldID, arr.DataType())
	}
	if err != nil {
		return abi.ColumnData{}, err
	}
	if arr.NullN() > 0 {
		c.Validity, c.Nullable = bytesOf(0), true
	}
	return c, nil
}

// varOffsets returns offs, or the single zero offset Arrow may omit for an
// empty array.
func varOffsets(offs []int32, n int) []int32 {
	if n == 0 && len(offs) == 0 {
		return []int32{0}
	}
	return offs
}

// Columns describes the arrays of one batch (fieldIDs[i] names arrs[i]) and
// appends the synthetic row-size column when rowSizes is not nil. Every
// array, and rowSizes, must have the same length.
func Columns(fieldIDs []int64, arrs []arrow.Array, rowSizes []uint32) ([]abi.ColumnData, error) {
	if len(fieldIDs) != len(arrs) {
		return nil, fmt.Errorf("abiarrow: %d field IDs for %d arrays", len(fieldIDs), len(arrs))
	}
	cols := make([]abi.ColumnData, 0, len(arrs)+1)
	rows := -1
	for i, a := range arrs {
		if rows >= 0 && a.Len() != rows {
			return nil, fmt.Errorf("abiarrow: field %d has %d rows, field %d has %d", fieldIDs[i], a.Len(), fieldIDs[0], rows)
		}
		rows = a.Len()
		c, err := Column(fieldIDs[i], a)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	if rowSizes != nil {
		if rows >= 0 && len(rowSizes) != rows {
			return nil, fmt.Errorf("abiarrow: %d row sizes for %d rows", len(rowSizes), rows)
		}
		cols = append(cols, abi.RowSizeData(rowSizes))
	}
	return cols, nil
}

// TypeOf returns the ABI column type (and, for fixed_size_binary, the width in bytes) that Column
// produces for arrays of Arrow type dt, so a host can announce its columns in the task before it
// has any batch.
func TypeOf(dt arrow.DataType) (abi.Type, uint32, error) {
	switch dt.ID() {
	case arrow.BOOL:
		return abi.TypeBool, 0, nil
	case arrow.INT8:
		return abi.TypeInt8, 0, nil
	case arrow.INT16:
		return abi.TypeInt16, 0, nil
	case arrow.INT32:
		return abi.TypeInt32, 0, nil
	case arrow.INT64:
		return abi.TypeInt64, 0, nil
	case arrow.UINT32:
		return abi.TypeUint32, 0, nil
	case arrow.FLOAT32:
		return abi.TypeFloat32, 0, nil
	case arrow.FLOAT64:
		return abi.TypeFloat64, 0, nil
	case arrow.STRING:
		return abi.TypeString, 0, nil
	case arrow.BINARY:
		return abi.TypeBinary, 0, nil
	case arrow.FIXED_SIZE_BINARY:
		return abi.TypeFixed, uint32(dt.(*arrow.FixedSizeBinaryType).ByteWidth), nil
	}
	return 0, 0, fmt.Errorf("abiarrow: Arrow type %s has no ABI v1 column encoding", dt)
}
