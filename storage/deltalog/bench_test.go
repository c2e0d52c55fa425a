package deltalog

import (
	"bytes"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

const benchRows = 100_000

func benchRead(b *testing.B, pt schemapb.DataType, f Format) {
	data := encode(b, genDeletes(pt, benchRows), f)
	r := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, _, err := Read(testKey, r, int64(len(data)))
		if err != nil || d.Len() != benchRows {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkReadJSONInt64(b *testing.B) { benchRead(b, schemapb.DataType_Int64, FormatJSON) }
func BenchmarkReadMultiFieldInt64(b *testing.B) {
	benchRead(b, schemapb.DataType_Int64, FormatMultiField)
}
func BenchmarkReadJSONVarChar(b *testing.B) { benchRead(b, schemapb.DataType_VarChar, FormatJSON) }
func BenchmarkReadMultiFieldVarChar(b *testing.B) {
	benchRead(b, schemapb.DataType_VarChar, FormatMultiField)
}

func BenchmarkWriteJSONInt64(b *testing.B) {
	d := genDeletes(schemapb.DataType_Int64, benchRows)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if _, err := Write(&buf, testMeta, d, FormatJSON); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkMapLookupInt64(b *testing.B) {
	m, _ := BuildMap(schemapb.DataType_Int64, genDeletes(schemapb.DataType_Int64, benchRows))
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		if m.DeletedInt64(int64(i%(benchRows*8)), 500) {
			n++
		}
	}
	_ = n
}
