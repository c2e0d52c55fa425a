package reference

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// storageV2 is the segment storage version of packed column-group data.
const storageV2 = 2

// readSegment reads a segment's insert data in its storage version.
func readSegment(ctx context.Context, store objstore.Store, seg int64, version int64, fields []*schemapb.FieldSchema, fbs []*datapb.FieldBinlog) (*table, error) {
	if version == storageV2 {
		return readInsertV2(ctx, store, seg, fields, fbs)
	}
	return readInsert(ctx, store, seg, fields, fbs)
}

// readInsertV2 reads a storage-v2 segment as Milvus's packed reader does
// (milvus-storage-v2.md §7.1): the FieldBinlogs are column groups sorted
// by group ID, chunk j is the j-th file (by log ID) of every group, so
// every group has as many files and a chunk's files as many rows; each
// file's columns are found by their field_id; a field no group holds is
// filled with its default value or nulls. fields must be the whole schema.
func readInsertV2(ctx context.Context, store objstore.Store, seg int64, fields []*schemapb.FieldSchema, fbs []*datapb.FieldBinlog) (*table, error) {
	groups := slices.Clone(fbs)
	slices.SortFunc(groups, func(a, b *datapb.FieldBinlog) int { return cmp.Compare(a.GetFieldID(), b.GetFieldID()) })
	type file struct {
		id  int64
		key string
	}
	files := make([][]file, len(groups))
	for g, fb := range groups {
		for _, b := range fb.GetBinlogs() {
			id, err := logIDOf(b)
			if err != nil {
				return nil, fmt.Errorf("segment %d group %d: %w", seg, fb.GetFieldID(), err)
			}
			files[g] = append(files[g], file{id, b.GetLogPath()})
		}
		slices.SortFunc(files[g], func(a, b file) int { return cmp.Compare(a.id, b.id) })
		if len(files[g]) != len(files[0]) {
			return nil, fmt.Errorf("segment %d: group %d has %d files, group %d has %d",
				seg, fb.GetFieldID(), len(files[g]), groups[0].GetFieldID(), len(files[0]))
		}
	}
	t := &table{fields: fields, cols: make([][]any, len(fields))}
	if len(groups) == 0 {
		return t, nil
	}
	index := make(map[int64]int, len(fields))
	for i, f := range fields {
		index[f.GetFieldID()] = i
	}
	for c := range len(files[0]) {
		chunkRows := -1
		held := make([]bool, len(fields))
		for g := range groups {
			key := files[g][c].key
			cols, rows, err := readPackedFile(ctx, store, key, fields)
			if err != nil {
				return nil, fmt.Errorf("segment %d: %w", seg, err)
			}
			if chunkRows >= 0 && rows != chunkRows {
				return nil, fmt.Errorf("segment %d chunk %d: %s holds %d rows, the chunk's other files %d", seg, c, key, rows, chunkRows)
			}
			chunkRows = rows
			for id, vals := range cols {
				i := index[id]
				if held[i] {
					return nil, fmt.Errorf("segment %d chunk %d: field %d is in two groups", seg, c, id)
				}
				held[i] = true
				t.cols[i] = append(t.cols[i], vals...)
			}
		}
		for i, f := range fields {
			if held[i] {
				continue
			}
			fill, err := missingValue(f)
			if err != nil {
				return nil, fmt.Errorf("segment %d chunk %d: %w", seg, c, err)
			}
			for range chunkRows {
				t.cols[i] = append(t.cols[i], fill)
			}
		}
		t.rows += max(chunkRows, 0)
	}
	for i := range t.cols {
		if t.cols[i] == nil {
			t.cols[i] = []any{}
		}
	}
	return t, nil
}

// readPackedFile decodes every column of one packed file into canonical
// values by field ID, and returns its row count.
func readPackedFile(ctx context.Context, store objstore.Store, key string, fields []*schemapb.FieldSchema) (map[int64][]any, int, error) {
	data, err := readObject(ctx, store, key)
	if err != nil {
		return nil, 0, err
	}
	r, err := packed.NewReader(key, bytes.NewReader(data), int64(len(data)), fields, packed.ReaderOptions{})
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	ids := r.FieldIDs()
	out := make(map[int64][]any, len(ids))
	rows := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, rows, nil
		}
		if err != nil {
			return nil, 0, err
		}
		for i, id := range ids {
			out[id], err = appendValues(out[id], rec.Column(i))
			if err != nil {
				rec.Release()
				return nil, 0, fmt.Errorf("packed file %q: %w", key, err)
			}
		}
		rows += int(rec.NumRows())
		rec.Release()
	}
}
