package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/storage/tso"
)

func TestNowMs(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if got := NowMs(int64(tso.Compose(at.UnixMilli(), 7))); got != at.UnixMilli() {
		t.Fatalf("hybrid start time: NowMs = %d, want %d", got, at.UnixMilli())
	}
	if got := NowMs(at.Unix()); got != at.UnixMilli() {
		t.Fatalf("Unix-seconds start time: NowMs = %d, want %d", got, at.UnixMilli())
	}
}

func TestParseParams(t *testing.T) {
	p, err := ParseParams("")
	if err != nil || p != (Params{BinlogMaxSize: 64 << 20, UseMergeSort: true, MaxSegmentMergeSort: 30, BFApplyBatchSize: 10000}) {
		t.Fatalf("defaults: %+v, %v", p, err)
	}
	p, err = ParseParams(`{"storage_version":0,"binlog_max_size":1024,"use_merge_sort":false,"max_segment_merge_sort":2,"unknown":1}`)
	if err != nil || p.BinlogMaxSize != 1024 || p.UseMergeSort || p.MaxSegmentMergeSort != 2 {
		t.Fatalf("explicit: %+v, %v", p, err)
	}
	for in, want := range map[string]string{
		`{"storage_version":3}`:  "storage_version 3 is not supported",
		`{"storage_version":-1}`: "storage_version -1 is not supported",
		`{"binlog_max_size":-1}`: "binlog_max_size -1",
		`[1]`:                    "json_params",
	} {
		if _, err := ParseParams(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseParams(%s) = %v, want an error containing %q", in, err, want)
		}
	}
}

func testSchema() *schemapb.CollectionSchema {
	return &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
		{FieldID: 102, Name: "price", DataType: schemapb.DataType_Double, Nullable: true},
		{FieldID: 103, Name: "$meta", DataType: schemapb.DataType_JSON, IsDynamic: true},
	}}
}

func TestResolveColumns(t *testing.T) {
	s := testSchema()
	pk := s.Fields[2]
	cols, err := ResolveColumns(s, pk, []string{"pk", "ts", "size", "rowid", "101", "price", "$meta", "pk", "100"})
	if err != nil {
		t.Fatal(err)
	}
	want := []abi.ColumnInfo{
		{FieldID: 100, Name: "pk", Type: abi.TypeString, DataType: int32(schemapb.DataType_VarChar)},
		{FieldID: 1, Name: "Timestamp", Type: abi.TypeInt64, DataType: int32(schemapb.DataType_Int64)},
		{FieldID: -1, Name: "size", Type: abi.TypeUint32},
		{FieldID: 0, Name: "RowID", Type: abi.TypeInt64, DataType: int32(schemapb.DataType_Int64)},
		{FieldID: 101, Name: "vec", Type: abi.TypeFixed, Width: 16, DataType: int32(schemapb.DataType_FloatVector)},
		{FieldID: 102, Name: "price", Type: abi.TypeFloat64, Nullable: true, DataType: int32(schemapb.DataType_Double)},
		{FieldID: 103, Name: "$meta", Type: abi.TypeBinary, DataType: int32(schemapb.DataType_JSON)},
	}
	if len(cols) != len(want) {
		t.Fatalf("got %d columns %+v, want %d", len(cols), cols, len(want))
	}
	for i := range want {
		if cols[i] != want[i] {
			t.Fatalf("column %d = %+v, want %+v", i, cols[i], want[i])
		}
	}
	if _, err := ResolveColumns(s, pk, []string{"pk", "nosuch"}); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Fatalf("unknown selector: %v", err)
	}
	// A rows batch of 10 rows: header, table, pk offsets and bytes, ts.
	got := maxBatchBytes(s, pk, want[:2], 10)
	if exp := uint64(32 + 2*32 + 48 + 640 + 80); got != exp {
		t.Fatalf("maxBatchBytes = %d, want %d", got, exp)
	}
}

func TestValidateL0Split(t *testing.T) {
	plan := &datapb.CompactionPlan{
		PlanID: 9, Type: datapb.CompactionType_Level0DeleteCompaction, BeginLogID: 1,
		PreAllocatedLogIDs: &datapb.IDRange{Begin: 1, End: 10}, Schema: testSchema(),
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{
			{SegmentID: 1, CollectionID: 5, PartitionID: 6, Level: datapb.SegmentLevel_L1},
			{SegmentID: 2, CollectionID: 5, PartitionID: 6, Level: datapb.SegmentLevel_L0},
			{SegmentID: 3, CollectionID: 5, PartitionID: 6, Level: datapb.SegmentLevel_L2},
		},
	}
	p, err := Validate(plan)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != abi.CompactionL0 || p.PKType != abi.TypeString || len(p.L0Segs) != 1 || p.L0Segs[0] != 1 || len(p.Targets) != 2 {
		t.Fatalf("plan split %+v", p)
	}
}
