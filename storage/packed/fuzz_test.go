package packed

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// FuzzReader feeds mutated packed files to the reader: it may fail, always
// naming the object, but never panic or allocate without bound.
//
//	go test ./storage/packed -run XXX -fuzz FuzzReader -fuzztime 30s -fuzzminimizetime 2s
func FuzzReader(f *testing.F) {
	s := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: field(0, "", 0, 4, false).TypeParams},
		{FieldID: 102, Name: "title", DataType: schemapb.DataType_VarChar, Nullable: true},
		{FieldID: 0, Name: "RowID", DataType: schemapb.DataType_Int64},
		{FieldID: 1, Name: "Timestamp", DataType: schemapb.DataType_Int64},
	}}
	fields := AllFields(s)
	groups, err := SplitGroups(s, DefaultSplitPolicy(), nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range groups {
		b, _ := writeGroup(f, groups, g, fields, WriterOptions{RowGroupBytes: 256}, 20, 5)
		f.Add(b)
	}
	f.Add(rawFile(f, sysCols, twoGroups, compress.Codecs.Uncompressed, goodList,
		[2]string{KeyLegacyRowGroupSize, legacyRowGroupSize(1, 2)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ReadLayout("fuzz", bytes.NewReader(b), int64(len(b))); err != nil && !strings.Contains(err.Error(), `"fuzz"`) {
			t.Fatalf("layout error without key: %v", err)
		}
		rd, err := NewReader("fuzz", bytes.NewReader(b), int64(len(b)), fields, ReaderOptions{BatchRows: 16})
		if err != nil {
			if !strings.Contains(err.Error(), `"fuzz"`) {
				t.Fatalf("error without key: %v", err)
			}
			return
		}
		defer rd.Close()
		for range 64 { // bounded: keep each iteration cheap
			rec, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), `"fuzz"`) {
					t.Fatalf("error without key: %v", err)
				}
				return
			}
			rec.Release()
		}
	})
}
