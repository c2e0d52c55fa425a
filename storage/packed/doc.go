// Package packed reads and writes Milvus 2.6 storage-v2 ("packed")
// column-group files: plain Parquet files, one per column group, whose
// columns carry the Milvus field ID as their Parquet field_id and whose
// footer holds three key-value entries (group_field_id_list,
// row_group_metadata, storage_version). See milvus-storage-v2.md §3-§4.
//
// SplitGroups computes Milvus' default column-group split, Writer writes
// one group's file, Reader reads one back by field ID with projection, and
// ReadLayout shows a file's groups, columns and row groups without a schema.
// The package knows nothing of object keys, segments or plans.
//
// Untrusted input: every Reader error names the object; footer entries that
// are missing, malformed or contradict the Parquet metadata are marked
// corrupt.Err; the Parquet library's panics are recovered into errors;
// ZSTD pages are bounded by storage/binlog's decoder (installed when that
// package initializes, which this one imports). Fuzz with a short
// minimization time, as for storage/binlog:
//
//	go test ./storage/packed -run XXX -fuzz FuzzReader -fuzztime 30s -fuzzminimizetime 2s
package packed
