package segread

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// canFill reports whether rows of f that have no binlog can be synthesized:
// with its default value when the schema sets one, else with nulls, which
// needs a nullable field (milvus-formats.md §7).
func canFill(f *schemapb.FieldSchema) error {
	if dv := f.GetDefaultValue(); dv != nil && dv.GetData() != nil {
		_, err := buildFill(f, 1)
		return err
	}
	if !f.GetNullable() {
		return errors.New("the field is neither nullable nor has a default value")
	}
	return nil
}

// buildFill returns an array of n rows of f's default value, or of nulls
// when f has no default value.
func buildFill(f *schemapb.FieldSchema, n int) (arrow.Array, error) {
	mem := memory.DefaultAllocator
	dt, err := binlog.ArrowType(f)
	if err != nil {
		return nil, err
	}
	dv := f.GetDefaultValue()
	if dv == nil || dv.GetData() == nil {
		return array.MakeArrayOfNull(mem, dt, n), nil
	}
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.Reserve(n)
	var appendOne func()
	switch d := dv.GetData().(type) {
	case *schemapb.ValueField_BoolData:
		if bb, ok := b.(*array.BooleanBuilder); ok {
			appendOne = func() { bb.Append(d.BoolData) }
		}
	case *schemapb.ValueField_IntData:
		switch bb := b.(type) {
		case *array.Int8Builder:
			appendOne = func() { bb.Append(int8(d.IntData)) }
		case *array.Int16Builder:
			appendOne = func() { bb.Append(int16(d.IntData)) }
		case *array.Int32Builder:
			appendOne = func() { bb.Append(d.IntData) }
		}
	case *schemapb.ValueField_LongData:
		if bb, ok := b.(*array.Int64Builder); ok && f.GetDataType() == schemapb.DataType_Int64 {
			appendOne = func() { bb.Append(d.LongData) }
		}
	case *schemapb.ValueField_TimestamptzData:
		if bb, ok := b.(*array.Int64Builder); ok && f.GetDataType() == schemapb.DataType_Timestamptz {
			appendOne = func() { bb.Append(d.TimestamptzData) }
		}
	case *schemapb.ValueField_FloatData:
		if bb, ok := b.(*array.Float32Builder); ok {
			appendOne = func() { bb.Append(d.FloatData) }
		}
	case *schemapb.ValueField_DoubleData:
		if bb, ok := b.(*array.Float64Builder); ok {
			appendOne = func() { bb.Append(d.DoubleData) }
		}
	case *schemapb.ValueField_StringData:
		switch bb := b.(type) {
		case *array.StringBuilder:
			appendOne = func() { bb.Append(d.StringData) }
		case *array.BinaryBuilder:
			if f.GetDataType() == schemapb.DataType_JSON {
				appendOne = func() { bb.AppendString(d.StringData) }
			}
		}
	case *schemapb.ValueField_BytesData:
		if bb, ok := b.(*array.BinaryBuilder); ok && f.GetDataType() == schemapb.DataType_JSON {
			appendOne = func() { bb.Append(d.BytesData) }
		}
	}
	if appendOne == nil {
		return nil, fmt.Errorf("default value %T does not fit type %s", dv.GetData(), f.GetDataType())
	}
	for range n {
		appendOne()
	}
	return b.NewArray(), nil
}
