// Package binlog reads and writes Milvus storage-v1 binlogs, byte-compatible
// with what Milvus' Go writers produce and its Go and C++ readers accept.
//
// A binlog is a container (magic number, descriptor event, one data event)
// whose data event payload is a single-column Parquet file. The container
// layer is WriteFile / ReadFile; the insert-log payload layer is EncodeInsert
// / NewInsertReader, which map every Milvus DataType to an Arrow column.
// Deltalogs (storage/deltalog) build on the container layer.
//
// All integers are little-endian; see milvus-formats.md §9.2-9.5.
//
// Untrusted input: every reader error names the object key; the Parquet
// library's panics are recovered into errors, column chunks must lie inside
// the payload, and ZSTD pages may not decode past the size their header
// announces (internal/safezstd, installed for the whole process at init).
// Fuzz with a short minimization time, or new-coverage inputs of the Parquet
// decoder stall the fuzzer for 60 s each:
//
//	go test ./storage/binlog -run XXX -fuzz FuzzInsertReader -fuzztime 30s -fuzzminimizetime 2s
package binlog

import "github.com/compacthost/compacthost/storage/binlog/internal/safezstd"

func init() {
	// Bound ZSTD page decoding for every Parquet reader in the process
	// (encoding is unchanged); see internal/safezstd.
	safezstd.Register()
}
