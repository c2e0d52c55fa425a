package abi

import "testing"

// benchColumns is the mix default: pk + ts + row size for rows rows.
func benchColumns(rows int) []ColumnData {
	pk, ts, size := make([]int64, rows), make([]int64, rows), make([]uint32, rows)
	for i := range pk {
		pk[i], ts[i], size[i] = int64(i)*7919, int64(450000000000000000+i), 128
	}
	return []ColumnData{Int64Data(100, pk), Int64Data(FieldIDTimestamp, ts), RowSizeData(size)}
}

func BenchmarkEncodeBatch(b *testing.B) {
	const rows = 8192
	cols := benchColumns(rows)
	h := BatchHeader{Kind: BatchRows, Rows: rows}
	n, _ := EncodedSize(rows, cols)
	dst := AlignedBytes(n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeInto(dst, h, cols); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	const rows = 8192
	buf, _ := Encode(BatchHeader{Kind: BatchRows, Rows: rows}, benchColumns(rows))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var batch Batch
	var sum int64
	for b.Loop() {
		if err := batch.Reset(buf); err != nil {
			b.Fatal(err)
		}
		sum += batch.Column(0).Int64s()[rows-1]
	}
	_ = sum
}

func BenchmarkDecodeBatchString(b *testing.B) {
	const rows = 8192
	keys := make([]string, rows)
	for i := range keys {
		keys[i] = "key-000000000000"
	}
	cols := append([]ColumnData{StringData(100, keys)}, benchColumns(rows)[1:]...)
	buf, _ := Encode(BatchHeader{Kind: BatchRows, Rows: rows}, cols)
	b.SetBytes(int64(len(buf)))
	var batch Batch
	for b.Loop() {
		if err := batch.Reset(buf); err != nil {
			b.Fatal(err)
		}
	}
}
