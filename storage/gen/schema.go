package gen

import (
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Field IDs of the generated schema. 0 and 1 are Milvus's system fields; user fields start at 100.
const (
	RowIDField     int64 = 0
	TimestampField int64 = 1
	PKField        int64 = 100
	VectorField    int64 = 101
	CategoryField  int64 = 102 // Int32
	PriceField     int64 = 103 // Double, nullable
	TitleField     int64 = 104 // VarChar, nullable
	InStockField   int64 = 105 // Bool
	MetaField      int64 = 106 // JSON "$meta", present when Config.DynamicField
	TextField      int64 = 107 // VarChar BM25 input, present when Config.BM25
	SparseField    int64 = 108 // SparseFloatVector BM25 output, present when Config.BM25
)

// Schema returns the collection schema Generate writes: system fields, a primary key, one
// FloatVector, a few scalars (two of them nullable) and, optionally, the dynamic "$meta" field
// and a BM25 function from a VarChar text field to a SparseFloatVector.
func Schema(c Config) *schemapb.CollectionSchema {
	pk := &schemapb.FieldSchema{FieldID: PKField, Name: "pk", IsPrimaryKey: true, DataType: c.PKType}
	if c.PKType == schemapb.DataType_VarChar {
		pk.TypeParams = []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}
	}
	fields := []*schemapb.FieldSchema{
		{FieldID: RowIDField, Name: "RowID", DataType: schemapb.DataType_Int64, Description: "row id"},
		{FieldID: TimestampField, Name: "Timestamp", DataType: schemapb.DataType_Int64, Description: "time stamp"},
		pk,
		{FieldID: VectorField, Name: "embedding", DataType: schemapb.DataType_FloatVector,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(c.Dim)}}},
		{FieldID: CategoryField, Name: "category", DataType: schemapb.DataType_Int32},
		{FieldID: PriceField, Name: "price", DataType: schemapb.DataType_Double, Nullable: true},
		{FieldID: TitleField, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "128"}}},
		{FieldID: InStockField, Name: "in_stock", DataType: schemapb.DataType_Bool},
	}
	if c.DynamicField {
		fields = append(fields, &schemapb.FieldSchema{FieldID: MetaField, Name: "$meta",
			DataType: schemapb.DataType_JSON, IsDynamic: true})
	}
	var functions []*schemapb.FunctionSchema
	if c.BM25 {
		bm25, fn := bm25Fields()
		fields, functions = append(fields, bm25...), []*schemapb.FunctionSchema{fn}
	}
	s := &schemapb.CollectionSchema{
		Name:               "compact_host_demo",
		Fields:             fields,
		EnableDynamicField: c.DynamicField,
		Functions:          functions,
	}
	if c.TTL > 0 {
		s.Properties = []*commonpb.KeyValuePair{{Key: "collection.ttl.seconds",
			Value: strconv.FormatInt(int64(c.TTL.Seconds()), 10)}}
	}
	return s
}
