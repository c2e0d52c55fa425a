package segread

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// fileRef is one insert object of one chunk: a v1 binlog holding one field,
// or a v2 column-group file holding the group's fields.
type fileRef struct {
	key   string
	logID int64
	rows  int64 // entries_num from the metadata; 0 when unset
	size  int64 // log_size from the metadata; 0 when unknown
	id    int64 // v1: the field ID; v2: the column group ID (FieldBinlog.fieldID)
	v2    bool
	pos   int     // v2: the group's position among the segment's groups, in ID order
	child []int64 // v2: child_fields; nil for legacy metadata
}

// name is how errors call the object.
func (fr *fileRef) name() string {
	if fr.v2 {
		return fmt.Sprintf("packed file %q", fr.key)
	}
	return fmt.Sprintf("binlog %q", fr.key)
}

// chunk is one aligned run of rows: for v1 the i-th binlog of every field
// (§9.6), for v2 the i-th file of every column group (§7.1). files are the
// objects holding a requested field; requested fields without one are
// filled.
type chunk struct {
	index int
	rows  int64 // entries_num agreed by the files (those that set it); checked against every payload
	files []*fileRef
}

// plan is how a segment's insert objects map onto chunks and requested
// fields.
type plan struct {
	chunks []chunk
	fills  []bool // per requested field: some chunk lacks it, so it needs a fill
	// v2 only: the column group each field belongs to as the metadata says
	// (child_fields, or a legacy group ID >= 100 presumed to be its field),
	// and the number of groups.
	claims map[int64]int64
	groups int
}

// logIDOf returns the binlog's logID, or the number its key ends with when
// the logID is unset.
func logIDOf(b *datapb.Binlog) (int64, error) {
	if b.GetLogID() > 0 {
		return b.GetLogID(), nil
	}
	id, err := strconv.ParseInt(path.Base(b.GetLogPath()), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("binlog %q has no logID and its key does not end in one", b.GetLogPath())
	}
	return id, nil
}

// fileRefs returns fb's binlogs sorted by logID. what names fb in errors.
func fileRefs(segID int64, what string, fb *datapb.FieldBinlog) ([]*fileRef, error) {
	var refs []*fileRef
	for _, b := range fb.GetBinlogs() {
		if b == nil {
			return nil, fmt.Errorf("segread: segment %d %s: nil binlog entry", segID, what)
		}
		id, err := logIDOf(b)
		if err != nil {
			return nil, fmt.Errorf("segread: segment %d %s: %w", segID, what, err)
		}
		if b.GetLogPath() == "" {
			return nil, fmt.Errorf("segread: segment %d %s: binlog %d has no log_path (fill the plan's paths first)",
				segID, what, id)
		}
		refs = append(refs, &fileRef{key: b.GetLogPath(), logID: id, rows: b.GetEntriesNum(), size: b.GetLogSize(), id: fb.GetFieldID()})
	}
	slices.SortStableFunc(refs, func(a, b *fileRef) int { return cmp.Compare(a.logID, b.logID) })
	return refs, nil
}

// planV1 aligns the insert binlogs of seg to the schema fields as Milvus's
// V1 reader does (milvus-formats.md §9.6, §7): every field's files sorted
// by logID, chunk i is the i-th file of every field, fields with fewer
// files aligned to the end. Only the files of the requested fields (out)
// are read; those with missing chunks must be fillable. FieldBinlogs of
// fields outside the schema are ignored (dropped fields).
func planV1(segID int64, fields, out []*schemapb.FieldSchema, seg *datapb.CompactionSegmentBinlogs) (plan, error) {
	byField := map[int64][]*fileRef{}
	for _, fb := range seg.GetFieldBinlogs() {
		refs, err := fileRefs(segID, fmt.Sprintf("field %d", fb.GetFieldID()), fb)
		if err != nil {
			return plan{}, err
		}
		byField[fb.GetFieldID()] = append(byField[fb.GetFieldID()], refs...)
	}
	n := 0
	for _, f := range fields {
		fs := byField[f.GetFieldID()]
		slices.SortStableFunc(fs, func(a, b *fileRef) int { return cmp.Compare(a.logID, b.logID) })
		n = max(n, len(fs))
	}
	// every[i] are chunk i's files of all schema fields, which must agree on
	// the rows whether read or not.
	every := make([][]*fileRef, n)
	for _, f := range fields {
		fs := byField[f.GetFieldID()]
		for j, fr := range fs {
			every[n-len(fs)+j] = append(every[n-len(fs)+j], fr)
		}
	}
	p := plan{chunks: make([]chunk, n), fills: make([]bool, len(out))}
	for i := range p.chunks {
		rows, err := chunkRows(segID, i, every[i])
		if err != nil {
			return plan{}, err
		}
		p.chunks[i] = chunk{index: i, rows: rows}
	}
	for oi, f := range out {
		fs := byField[f.GetFieldID()]
		if len(fs) < n {
			if err := canFill(f); err != nil {
				return plan{}, fmt.Errorf("segread: segment %d field %d (%s) has %d of %d binlog chunks: %w",
					segID, f.GetFieldID(), f.GetName(), len(fs), n, err)
			}
			p.fills[oi] = true
		}
		for j, fr := range fs {
			c := &p.chunks[n-len(fs)+j]
			c.files = append(c.files, fr)
		}
	}
	return p, nil
}

// chunkRows returns the entries_num the files of chunk ci agree on, ignoring
// files that leave it unset.
func chunkRows(segID int64, ci int, files []*fileRef) (int64, error) {
	var first *fileRef
	for _, fr := range files {
		if fr.rows <= 0 {
			continue
		}
		if first == nil {
			first = fr
		} else if fr.rows != first.rows {
			return 0, fmt.Errorf("segread: segment %d chunk %d: binlog %q has entries_num %d but %q has %d",
				segID, ci, fr.key, fr.rows, first.key, first.rows)
		}
	}
	if first == nil && len(files) > 0 {
		return 0, fmt.Errorf("segread: segment %d chunk %d: no binlog has a positive entries_num (e.g. %q)",
			segID, ci, files[0].key)
	}
	if first == nil {
		return 0, nil
	}
	return first.rows, nil
}

// startOfUserFieldID is Milvus's common.StartOfUserFieldID: a column group
// ID at or above it is the ID of the group's only field.
const startOfUserFieldID = 100

// planV2 forms the chunks of a storage-v2 segment as Milvus's packed reader
// does (milvus-storage-v2.md §7.1, §8.4): FieldBinlogs sorted by group ID,
// chunk j is the j-th file (by logID) of every group, every group has the
// same number of files and a chunk's files agree on entries_num. Each file
// must sit under the directory named by its group ID. Only the groups
// holding a requested field are read. A group without child_fields (legacy
// metadata) is taken to hold its own field if its ID is a field ID >= 100,
// and otherwise whatever its files say, so it is read whenever a requested
// field is claimed by no other group. A requested field in no group is
// filled.
func planV2(segID int64, fields, out []*schemapb.FieldSchema, seg *datapb.CompactionSegmentBinlogs) (plan, error) {
	fbs := slices.Clone(seg.GetFieldBinlogs())
	slices.SortStableFunc(fbs, func(a, b *datapb.FieldBinlog) int { return cmp.Compare(a.GetFieldID(), b.GetFieldID()) })
	known := make(map[int64]bool, len(fields))
	for _, f := range fields {
		known[f.GetFieldID()] = true
	}
	p := plan{claims: map[int64]int64{}, groups: len(fbs), fills: make([]bool, len(out))}
	groups := make([][]*fileRef, len(fbs))
	var unknown []int // positions of groups whose fields only their files tell
	for gi, fb := range fbs {
		gid := fb.GetFieldID()
		if gi > 0 && gid == fbs[gi-1].GetFieldID() {
			return plan{}, fmt.Errorf("segread: segment %d: column group %d has two FieldBinlogs", segID, gid)
		}
		child := fb.GetChildFields()
		claims := child
		if len(child) == 0 {
			child = nil
			if gid >= startOfUserFieldID && known[gid] {
				claims = []int64{gid}
			} else {
				unknown = append(unknown, gi)
			}
		}
		for _, id := range claims {
			if !known[id] {
				return plan{}, fmt.Errorf("segread: segment %d: column group %d lists field %d, which is not in the schema", segID, gid, id)
			}
			if other, dup := p.claims[id]; dup {
				return plan{}, fmt.Errorf("segread: segment %d: field %d is in column groups %d and %d", segID, id, other, gid)
			}
			p.claims[id] = gid
		}
		refs, err := fileRefs(segID, fmt.Sprintf("column group %d", gid), fb)
		if err != nil {
			return plan{}, err
		}
		for _, fr := range refs {
			fr.v2, fr.pos, fr.child = true, gi, child
			if dir := path.Base(path.Dir(fr.key)); dir != strconv.FormatInt(gid, 10) {
				return plan{}, fmt.Errorf("segread: segment %d column group %d: %s sits in directory %q; a storage-v2 file's directory must be its group ID",
					segID, gid, fr.name(), dir)
			}
		}
		if gi > 0 && len(refs) != len(groups[0]) {
			return plan{}, fmt.Errorf("segread: segment %d: column group %d has %d files but group %d has %d; storage v2 needs the same number in every group",
				segID, gid, len(refs), fbs[0].GetFieldID(), len(groups[0]))
		}
		groups[gi] = refs
	}
	read := make([]bool, len(fbs))
	for oi, f := range out {
		if gid, ok := p.claims[f.GetFieldID()]; ok {
			read[slices.IndexFunc(fbs, func(fb *datapb.FieldBinlog) bool { return fb.GetFieldID() == gid })] = true
			continue
		}
		if len(unknown) > 0 {
			for _, gi := range unknown {
				read[gi] = true
			}
			continue
		}
		if err := canFill(f); err != nil {
			return plan{}, fmt.Errorf("segread: segment %d field %d (%s) is in no column group: %w", segID, f.GetFieldID(), f.GetName(), err)
		}
		p.fills[oi] = true
	}
	if len(fbs) == 0 {
		return p, nil
	}
	p.chunks = make([]chunk, len(groups[0]))
	for j := range p.chunks {
		c := &p.chunks[j]
		c.index = j
		every := make([]*fileRef, len(groups))
		for gi, refs := range groups {
			every[gi] = refs[j]
			if read[gi] {
				c.files = append(c.files, refs[j])
			}
		}
		var err error
		if c.rows, err = chunkRows(segID, j, every); err != nil {
			return plan{}, err
		}
	}
	return p, nil
}
