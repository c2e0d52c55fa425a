package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/packed"
)

// packedView is a storage-v2 column-group file as inspect shows it.
type packedView struct {
	// GroupID is the column group the key names (its 4th ID); -1 when the name is not an
	// insert-log key.
	GroupID int64 `json:"group_id"`
	// GroupIndex is the file's position in group_field_id_list.
	GroupIndex int                  `json:"group_index"`
	Groups     [][]int64            `json:"groups"` // group_field_id_list: every group of the segment
	Fields     []packedFieldView    `json:"fields"`
	RowGroups  []packedRowGroupView `json:"row_groups"`
	Footer     packedFooterView     `json:"footer"`
}

type packedFieldView struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"` // Arrow type
	Nullable bool   `json:"nullable"`
}

type packedRowGroupView struct {
	Rows              int64 `json:"rows"`
	CompressedBytes   int64 `json:"compressed_bytes"`
	UncompressedBytes int64 `json:"uncompressed_bytes"`
	MemorySize        int64 `json:"memory_size"` // row_group_metadata's estimate
}

// packedFooterView holds the footer's key-value entries as the file states them (for a
// pre-release file, row_group_metadata is rebuilt from row_group_size).
type packedFooterView struct {
	GroupFieldIDList string `json:"group_field_id_list"`
	RowGroupMetadata string `json:"row_group_metadata"`
	StorageVersion   string `json:"storage_version,omitempty"`
	Legacy           bool   `json:"legacy,omitempty"`
}

func inspectPacked(ins *inspection, data []byte) error {
	l, err := packed.ReadLayout(ins.Name, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	ins.Kind, ins.NumRows = "packed", l.Rows
	v := &packedView{GroupID: -1, Groups: l.Groups,
		GroupIndex: slices.IndexFunc(l.Groups, func(g []int64) bool { return slices.Equal(g, l.FieldIDs) })}
	if k, err := milvuspath.Parse(strings.TrimPrefix(ins.Name, "/")); err == nil && k.Kind == milvuspath.KindInsert {
		v.GroupID = k.FieldID
	}
	for i, id := range l.FieldIDs {
		v.Fields = append(v.Fields, packedFieldView{ID: id, Name: l.Names[i], Type: l.Types[i].String(), Nullable: l.Nullable[i]})
	}
	for i, rg := range l.ParquetRowGroups {
		v.RowGroups = append(v.RowGroups, packedRowGroupView{Rows: rg.Rows, CompressedBytes: rg.CompressedBytes,
			UncompressedBytes: rg.UncompressedBytes, MemorySize: l.RowGroups[i].MemorySize})
	}
	groups := make([]packed.Group, len(l.Groups))
	for i, g := range l.Groups {
		groups[i].Fields = g
	}
	v.Footer = packedFooterView{GroupFieldIDList: packed.FormatGroupFieldIDList(groups),
		RowGroupMetadata: packed.FormatRowGroupMetadata(l.RowGroups), StorageVersion: l.StorageVersion, Legacy: l.Legacy}
	ins.Packed = v
	return nil
}

func (v *packedView) render(w io.Writer, rows int64) {
	group := "group ?"
	if v.GroupID >= 0 {
		group = "group " + strconv.FormatInt(v.GroupID, 10)
	}
	fmt.Fprintf(w, "  storage v2 column-group file: %s (index %d of %d), %d rows in %d row groups\n",
		group, v.GroupIndex, len(v.Groups), rows, len(v.RowGroups))
	for _, f := range v.Fields {
		null := "required"
		if f.Nullable {
			null = "nullable"
		}
		fmt.Fprintf(w, "  field %d %q: %s, %s\n", f.ID, f.Name, f.Type, null)
	}
	for i, rg := range v.RowGroups {
		fmt.Fprintf(w, "  row group %d: %d rows, %d bytes (%d uncompressed), memory_size %d\n",
			i, rg.Rows, rg.CompressedBytes, rg.UncompressedBytes, rg.MemorySize)
	}
	fmt.Fprintf(w, "  footer group_field_id_list: %s\n", v.Footer.GroupFieldIDList)
	if v.Footer.Legacy {
		fmt.Fprintf(w, "  footer row_group_size (pre-release 2.6 file), as row_group_metadata: %s\n", v.Footer.RowGroupMetadata)
		return
	}
	fmt.Fprintf(w, "  footer row_group_metadata: %s\n", v.Footer.RowGroupMetadata)
	fmt.Fprintf(w, "  footer storage_version: %s\n", v.Footer.StorageVersion)
}
