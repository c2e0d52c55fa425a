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
package binlog

import "github.com/compacthost/compacthost/storage/binlog/internal/safezstd"

func init() {
	// Bound ZSTD page decoding for every Parquet reader in the process
	// (encoding is unchanged); see internal/safezstd.
	safezstd.Register()
}
