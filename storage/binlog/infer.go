package binlog

import (
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// FieldFromFile reconstructs the field schema an insert binlog was written for, from its
// descriptor (field ID, payload type, nullable) and, for vectors, the payload's fixed-size width
// (the C++ loader infers dim the same way). It serves tools that read a binlog without its
// collection schema; compaction always uses the plan's schema instead.
func FieldFromFile(f *File, r io.ReaderAt) (*schemapb.FieldSchema, error) {
	d := f.Descriptor
	field := &schemapb.FieldSchema{FieldID: d.FieldID, Name: strconv.FormatInt(d.FieldID, 10),
		DataType: d.PayloadType, Nullable: d.Nullable()}
	switch d.PayloadType {
	case schemapb.DataType_BinaryVector, schemapb.DataType_FloatVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_Int8Vector:
	default:
		return field, nil
	}
	pf, err := file.NewParquetReader(f.Payload(r, 0), file.WithReadProps(parquet.NewReaderProperties(memory.DefaultAllocator)))
	if err != nil {
		return nil, fmt.Errorf("payload is not a valid Parquet file: %w", err)
	}
	defer pf.Close()
	if pf.MetaData().Schema.NumColumns() < 1 {
		return nil, fmt.Errorf("Parquet payload has no columns")
	}
	width := pf.MetaData().Schema.Column(0).TypeLength()
	var dim int
	switch d.PayloadType {
	case schemapb.DataType_BinaryVector:
		dim = width * 8
	case schemapb.DataType_FloatVector:
		dim = width / 4
	case schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
		dim = width / 2
	default:
		dim = width
	}
	if dim <= 0 {
		return nil, fmt.Errorf("payload column 0 has width %d, not a %s", width, d.PayloadType)
	}
	field.TypeParams = []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(dim)}}
	return field, nil
}
