package binlog

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

type benchCase struct {
	name  string
	field *schemapb.FieldSchema
	col   func(testing.TB) arrow.Array
	opts  WriterOptions
}

func benchCases() []benchCase {
	const rows = 20_000
	vec := testField(101, schemapb.DataType_FloatVector, 768, false)
	pk := testField(100, schemapb.DataType_Int64, 0, false)
	pk.IsPrimaryKey = true
	vecCol := func(testing.TB) arrow.Array {
		rng := rand.New(rand.NewSource(1))
		b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: 768 * 4})
		row := make([]float32, 768)
		for i := 0; i < rows; i++ {
			for j := range row {
				row[j] = rng.Float32()
			}
			b.Append(arrow.Float32Traits.CastToBytes(row))
		}
		return b.NewArray()
	}
	pkCol := func(n int) func(testing.TB) arrow.Array {
		return func(testing.TB) arrow.Array {
			b := array.NewInt64Builder(memory.DefaultAllocator)
			for i := 0; i < n; i++ {
				b.Append(int64(i)*3 + 449_000_000_000)
			}
			return b.NewArray()
		}
	}
	raw := compress.Codecs.Uncompressed
	cases := []benchCase{
		{"FloatVector768", vec, vecCol, WriterOptions{}},
		{"FloatVector768-raw", vec, vecCol, WriterOptions{Compression: &raw, DisableDictionary: true}},
		{"Int64pk-20k", pk, pkCol(rows), WriterOptions{}},
		{"Int64pk-1M", pk, pkCol(1_000_000), WriterOptions{}},
	}
	// The scalar types of gen's schema, 1M rows each, Milvus's defaults;
	// the nullable ones with every third row null (makeColumn).
	for _, sc := range []struct {
		name     string
		dt       schemapb.DataType
		nullable bool
	}{
		{"Bool-1M", schemapb.DataType_Bool, false},
		{"Int32-1M", schemapb.DataType_Int32, false},
		{"Int64-1M", schemapb.DataType_Int64, false},
		{"Double-nullable-1M", schemapb.DataType_Double, true},
		{"VarChar-nullable-1M", schemapb.DataType_VarChar, true},
		{"JSON-1M", schemapb.DataType_JSON, false},
	} {
		f := testField(102, sc.dt, 0, sc.nullable)
		cases = append(cases, benchCase{sc.name, f, func(tb testing.TB) arrow.Array { return makeColumn(tb, f, 1_000_000, sc.nullable) }, WriterOptions{}})
	}
	return cases
}

// BenchmarkBinlog reports encode and decode throughput in uncompressed
// (MemorySize) bytes per second, and a plain os.ReadFile of the same encoded
// object for comparison (throughput in file bytes).
func BenchmarkBinlog(b *testing.B) {
	for _, c := range benchCases() {
		col := c.col(b)
		mem := MemorySize(col)
		var enc bytes.Buffer
		if _, err := EncodeInsert(&enc, baseDesc, c.field, col, c.opts); err != nil {
			b.Fatal(err)
		}
		encoded := bytes.Clone(enc.Bytes())
		path := filepath.Join(b.TempDir(), "binlog")
		if err := os.WriteFile(path, encoded, 0o644); err != nil {
			b.Fatal(err)
		}

		b.Run(c.name+"/encode", func(b *testing.B) {
			b.SetBytes(mem)
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if _, err := EncodeInsert(&buf, baseDesc, c.field, col, c.opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(encoded)), "file-bytes")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.SetBytes(mem)
			for b.Loop() {
				decodeAll(b, encoded, c.field)
			}
		})
		b.Run(c.name+"/decode-from-disk", func(b *testing.B) {
			b.SetBytes(mem)
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				ir, err := NewInsertReader(path, f, int64(len(encoded)), c.field, DefaultBatchRows)
				if err != nil {
					b.Fatal(err)
				}
				drain(b, ir)
				f.Close()
			}
		})
		b.Run(c.name+"/os.ReadFile", func(b *testing.B) {
			b.SetBytes(int64(len(encoded)))
			for b.Loop() {
				if _, err := os.ReadFile(path); err != nil {
					b.Fatal(err)
				}
			}
		})
		col.Release()
	}
}

func decodeAll(b *testing.B, encoded []byte, f *schemapb.FieldSchema) {
	ir, err := NewInsertReader("bench", bytes.NewReader(encoded), int64(len(encoded)), f, DefaultBatchRows)
	if err != nil {
		b.Fatal(err)
	}
	drain(b, ir)
}

func drain(b *testing.B, ir *InsertReader) {
	defer ir.Close()
	for {
		c, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}
