package packed

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Footer key-value keys (milvus-storage common/constants.h).
const (
	KeyGroupFieldIDList = "group_field_id_list"
	KeyRowGroupMetadata = "row_group_metadata"
	KeyStorageVersion   = "storage_version"
	// KeyLegacyRowGroupSize replaced row_group_metadata and storage_version
	// in milvus-storage 6cf37240 (2025-04); 2.6 pre-release files carry it.
	KeyLegacyRowGroupSize = "row_group_size"
)

// StorageVersion is the storage_version value Milvus writes.
const StorageVersion = "1.0.0"

// RowGroup is one row_group_metadata entry: the row group's estimated Arrow
// memory, its rows, and the rows of the file before it.
type RowGroup struct {
	MemorySize, Rows, Offset int64
}

// FormatRowGroupMetadata renders the row_group_metadata value:
// "memory_size|row_num|row_offset" entries joined by ";".
func FormatRowGroupMetadata(rgs []RowGroup) string {
	var b strings.Builder
	for i, rg := range rgs {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, "%d|%d|%d", rg.MemorySize, rg.Rows, rg.Offset)
	}
	return b.String()
}

// ParseRowGroupMetadata parses a row_group_metadata value. Empty entries
// are skipped, as Milvus does; an entry without exactly three non-negative
// decimal parts is an error.
func ParseRowGroupMetadata(s string) ([]RowGroup, error) {
	var rgs []RowGroup
	for _, e := range strings.Split(s, ";") {
		if e == "" {
			continue
		}
		parts := strings.Split(e, "|")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s entry %q does not have 3 |-separated parts", KeyRowGroupMetadata, e)
		}
		var v [3]int64
		for i, p := range parts {
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s entry %q: %q is not a non-negative integer", KeyRowGroupMetadata, e, p)
			}
			v[i] = n
		}
		rgs = append(rgs, RowGroup{MemorySize: v[0], Rows: v[1], Offset: v[2]})
	}
	return rgs, nil
}

// parseLegacyRowGroupSize decodes row_group_size: the row groups' memory
// sizes as raw little-endian 64-bit words (a C++ size_t array), n of them.
func parseLegacyRowGroupSize(s string, n int) ([]int64, error) {
	if len(s) != 8*n {
		return nil, fmt.Errorf("%s holds %d bytes, want 8 per row group (%d row groups)", KeyLegacyRowGroupSize, len(s), n)
	}
	sizes := make([]int64, n)
	for i := range sizes {
		sizes[i] = int64(binary.LittleEndian.Uint64([]byte(s[8*i:])))
	}
	return sizes, nil
}

// Footer is what a packed file's key-value metadata says.
type Footer struct {
	// Groups is group_field_id_list: the field IDs of every column group of
	// the writer, in list (ascending group ID) order.
	Groups [][]int64
	// RowGroups is row_group_metadata; for a legacy file it is rebuilt from
	// the Parquet row groups and the row_group_size memory estimates.
	RowGroups []RowGroup
	// StorageVersion is storage_version; "" for a legacy file.
	StorageVersion string
	// Legacy reports a pre-release 2.6 file (row_group_size, no
	// row_group_metadata and storage_version).
	Legacy bool
}
