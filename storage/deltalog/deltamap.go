package deltalog

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Map is one segment's delete map (milvus-formats.md §2.1): every deleted pk with
// the largest delete timestamp seen for it. It is immutable and safe for
// concurrent lookups.
//
// Storage is sorted arrays, not a Go map: 16 bytes per Int64 pk, and for VarChar
// pks the key bytes in one arena plus 12 bytes (offset, timestamp) per pk.
// Lookups are binary searches.
type Map struct {
	pkType schemapb.DataType
	ints   []int64  // Int64: sorted distinct pks
	arena  []byte   // VarChar: concatenated sorted distinct pks
	ends   []uint32 // VarChar: end offset of pk i in arena
	ts     []uint64 // max delete ts of pk i
}

// BuildMap merges the deletes of one segment's deltalogs. All non-empty inputs
// must share pkType (Int64 or VarChar).
func BuildMap(pkType schemapb.DataType, logs ...*Deletes) (*Map, error) {
	m := &Map{pkType: pkType}
	n := 0
	for i, d := range logs {
		if d.Len() == 0 {
			continue
		}
		if d.PKType != pkType {
			return nil, fmt.Errorf("deltalog map: input %d has %v pks, want %v", i, d.PKType, pkType)
		}
		if err := d.check(); err != nil {
			return nil, fmt.Errorf("deltalog map: input %d: %w", i, err)
		}
		n += d.Len()
	}
	switch pkType {
	case schemapb.DataType_Int64:
		m.buildInt64(logs, n)
	case schemapb.DataType_VarChar:
		if err := m.buildVarChar(logs, n); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("deltalog map: pk type %v is neither Int64 nor VarChar", pkType)
	}
	return m, nil
}

type intDel struct {
	pk int64
	ts uint64
}

func (m *Map) buildInt64(logs []*Deletes, n int) {
	all := make([]intDel, 0, n)
	for _, d := range logs {
		for i, pk := range d.IntPKs {
			all = append(all, intDel{pk, d.Timestamps[i]})
		}
	}
	slices.SortFunc(all, func(a, b intDel) int { return cmp.Compare(a.pk, b.pk) })
	for _, e := range all {
		if k := len(m.ints); k > 0 && m.ints[k-1] == e.pk {
			m.ts[k-1] = max(m.ts[k-1], e.ts)
			continue
		}
		m.ints = append(m.ints, e.pk)
		m.ts = append(m.ts, e.ts)
	}
	m.ints, m.ts = slices.Clip(m.ints), slices.Clip(m.ts)
}

type strDel struct {
	pk string
	ts uint64
}

func (m *Map) buildVarChar(logs []*Deletes, n int) error {
	all := make([]strDel, 0, n)
	for _, d := range logs {
		for i, pk := range d.StrPKs {
			all = append(all, strDel{pk, d.Timestamps[i]})
		}
	}
	slices.SortFunc(all, func(a, b strDel) int { return strings.Compare(a.pk, b.pk) })
	var size int
	for i, e := range all {
		if i == 0 || e.pk != all[i-1].pk {
			size += len(e.pk)
		}
	}
	if size > math.MaxUint32 {
		return fmt.Errorf("deltalog map: %d bytes of VarChar pks exceed 4 GiB", size)
	}
	m.arena = make([]byte, 0, size)
	for i, e := range all {
		if i > 0 && e.pk == all[i-1].pk {
			k := len(m.ts) - 1
			m.ts[k] = max(m.ts[k], e.ts)
			continue
		}
		m.arena = append(m.arena, e.pk...)
		m.ends = append(m.ends, uint32(len(m.arena)))
		m.ts = append(m.ts, e.ts)
	}
	m.ends, m.ts = slices.Clip(m.ends), slices.Clip(m.ts)
	return nil
}

// PKType returns the map's pk type.
func (m *Map) PKType() schemapb.DataType { return m.pkType }

// Len is the number of distinct deleted pks (Milvus's "deltalog delete count").
func (m *Map) Len() int { return len(m.ts) }

// MemorySize is the bytes held by the map's arrays.
func (m *Map) MemorySize() int64 {
	return int64(cap(m.ints))*8 + int64(cap(m.arena)) + int64(cap(m.ends))*4 + int64(cap(m.ts))*8
}

// Int64TS returns the largest delete ts of an Int64 pk, if it was deleted.
func (m *Map) Int64TS(pk int64) (uint64, bool) {
	i, ok := slices.BinarySearch(m.ints, pk)
	if !ok {
		return 0, false
	}
	return m.ts[i], true
}

func (m *Map) str(i int) string {
	start := uint32(0)
	if i > 0 {
		start = m.ends[i-1]
	}
	return string(m.arena[start:m.ends[i]])
}

// VarCharTS returns the largest delete ts of a VarChar pk, if it was deleted.
func (m *Map) VarCharTS(pk string) (uint64, bool) {
	i := sort.Search(len(m.ends), func(i int) bool {
		start := uint32(0)
		if i > 0 {
			start = m.ends[i-1]
		}
		return string(m.arena[start:m.ends[i]]) >= pk
	})
	if i == len(m.ends) || m.str(i) != pk {
		return 0, false
	}
	return m.ts[i], true
}

// DeletedInt64 applies Milvus's delete rule to a row: deleted iff its pk has a
// delete with row_ts < delete_ts. The comparison is strict, so an upsert's new
// row (written with the delete's ts) survives.
func (m *Map) DeletedInt64(pk int64, rowTS uint64) bool {
	d, ok := m.Int64TS(pk)
	return ok && rowTS < d
}

// DeletedVarChar is DeletedInt64 for a VarChar pk.
func (m *Map) DeletedVarChar(pk string, rowTS uint64) bool {
	d, ok := m.VarCharTS(pk)
	return ok && rowTS < d
}
