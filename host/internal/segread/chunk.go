package segread

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// openChunk is the chunk being decoded: one cursor per requested field
// held by one of its files.
type openChunk struct {
	rows    int64
	pos     int64
	cursors []*cursor // per requested field; nil where the field is filled
}

// decoder yields one field's rows of one object in batches.
type decoder interface {
	Next() (arrow.Array, error)
	Close() error
}

// cursor hands out exact row counts from one decoder's batches.
type cursor struct {
	name string // the object, as errors call it
	dec  decoder
	pend arrow.Array // decoded rows not handed out yet start at off
	off  int
	data []byte // the compressed object, kept until the chunk is done
	// closer is closed after dec: the ranged reader of a v2 file read in
	// place, shared by its columns' cursors and owned by one of them.
	closer io.Closer
}

// opened is one object of a chunk, checked and ready to decode: a cursor
// per requested field it holds, and every field it holds.
type opened struct {
	holds   []int64
	cursors map[int]*cursor // by requested-field index
	rows    int64
	groups  [][]int64 // v2: the footer's group_field_id_list
}

// openChunk opens the decoders of c's objects over the downloaded bytes and
// checks that every object holds as many rows as the chunk's entries_num,
// so that the rows delivered always add up to NumRows, and that no field
// is held by two objects.
func (r *Reader) openChunk(c *chunk, data [][]byte) (*openChunk, error) {
	files := make([]opened, len(c.files))
	closeAll := func() {
		for _, o := range files {
			for _, cur := range o.cursors {
				cur.close()
			}
		}
	}
	err := parallel(len(c.files), r.opts.Parallelism, func(i int) error {
		var err error
		if c.files[i].v2 {
			files[i], err = r.openPacked(c.files[i], data[i])
		} else {
			files[i], err = r.openBinlog(c.files[i], data[i])
		}
		return err
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	oc := &openChunk{rows: c.rows, cursors: make([]*cursor, len(r.fields))}
	heldBy := map[int64]*fileRef{}
	for i, o := range files {
		fr := c.files[i]
		if err := r.checkOpened(c, fr, o, files[0], heldBy); err != nil {
			closeAll()
			return nil, err
		}
		for oi, cur := range o.cursors {
			oc.cursors[oi] = cur
		}
	}
	for oi, cur := range oc.cursors {
		if cur == nil {
			if err := r.needFill(oi); err != nil {
				oc.close()
				return nil, err
			}
		}
	}
	return oc, nil
}

// checkOpened checks one opened object of chunk c against the chunk and the
// objects before it (first is the chunk's first object; heldBy maps the
// fields seen so far to their object).
func (r *Reader) checkOpened(c *chunk, fr *fileRef, o, first opened, heldBy map[int64]*fileRef) error {
	if o.rows != c.rows {
		return r.objErr(fr, corrupt.Mark(fmt.Errorf("chunk %d: %s holds %d rows but the chunk's entries_num is %d", c.index, fr.name(), o.rows, c.rows)))
	}
	if fr.v2 && !slices.EqualFunc(o.groups, first.groups, slices.Equal[[]int64]) {
		return r.objErr(fr, corrupt.Mark(fmt.Errorf("chunk %d: %s has %s %v but %s has %v",
			c.index, fr.name(), packed.KeyGroupFieldIDList, o.groups, c.files[0].name(), first.groups)))
	}
	for _, id := range o.holds {
		if other, dup := heldBy[id]; dup {
			return r.objErr(fr, corrupt.Mark(fmt.Errorf("chunk %d: field %d is in both %s and %s", c.index, id, other.name(), fr.name())))
		}
		heldBy[id] = fr
	}
	return nil
}

// v1Magic is how every v1 binlog starts (binlog.Magic, little-endian);
// v2 files start with the Parquet magic.
const (
	v1Magic      = "\xBC\xFA\xFF\x00"
	parquetMagic = "PAR1"
)

// openBinlog opens a v1 insert binlog of one field and checks its
// descriptor against the segment.
func (r *Reader) openBinlog(fr *fileRef, data []byte) (opened, error) {
	if bytes.HasPrefix(data, []byte(parquetMagic)) {
		return opened{}, r.objErr(fr, corrupt.Mark(fmt.Errorf("%s is a Parquet file (storage v2?), not a v1 binlog; the segment has storage_version %d",
			fr.name(), r.version)))
	}
	oi := r.outIdx[fr.id]
	ir, err := binlog.NewInsertReader(fr.key, bytes.NewReader(data), int64(len(data)), r.fields[oi], r.opts.BatchRows)
	if err != nil {
		return opened{}, r.objErr(fr, err)
	}
	if err := ir.Descriptor().CheckOwner(r.owner); err != nil {
		ir.Close()
		return opened{}, r.objErr(fr, fmt.Errorf("%s: %w", fr.name(), err))
	}
	return opened{holds: []int64{fr.id}, rows: ir.NumRows(),
		cursors: map[int]*cursor{oi: {name: fr.name(), dec: ir, data: data}}}, nil
}

// openPacked opens a v2 column-group file, checks its columns against the
// segment's metadata and its footer's group list against the segment's
// groups, and opens one reader per requested field it holds, so that its
// fields decode in parallel. data is the downloaded file, or nil for a
// file read in place (Reader.inPlace).
func (r *Reader) openPacked(fr *fileRef, data []byte) (opened, error) {
	var src io.ReaderAt
	var size int64
	var ranged *objstore.ReaderAt
	if data != nil {
		src, size = bytes.NewReader(data), int64(len(data))
	} else {
		var err error
		if ranged, err = objstore.NewReaderAt(r.dctx, r.store, fr.key); err != nil {
			return opened{}, r.objErr(fr, err)
		}
		src, size = ranged, ranged.Size()
	}
	fail := func(o opened, err error) (opened, error) {
		for _, cur := range o.cursors {
			cur.close()
		}
		if ranged != nil {
			ranged.Close()
		}
		return opened{}, r.objErr(fr, err)
	}
	var magic [4]byte
	if _, err := src.ReadAt(magic[:], 0); err == nil && string(magic[:]) == v1Magic {
		return fail(opened{}, corrupt.Mark(fmt.Errorf("%s is a storage-v1 binlog (magic BC FA FF 00), not a Parquet file; the segment has storage_version 2",
			fr.name())))
	}
	probe, err := packed.NewReader(fr.key, src, size, r.all, packed.ReaderOptions{BatchRows: r.opts.BatchRows})
	if err != nil {
		return fail(opened{}, err)
	}
	o := opened{holds: probe.FieldIDs(), rows: probe.NumRows(), groups: probe.Footer().Groups, cursors: map[int]*cursor{}}
	probe.Close()
	if err := r.checkGroup(fr, o); err != nil {
		return fail(o, corrupt.Mark(err))
	}
	for _, id := range o.holds {
		oi, ok := r.outIdx[id]
		if !ok {
			continue
		}
		rd, err := packed.NewReader(fr.key, src, size, r.all, packed.ReaderOptions{Fields: []int64{id}, BatchRows: r.opts.BatchRows})
		if err != nil {
			return fail(o, err)
		}
		o.cursors[oi] = &cursor{name: fr.name(), dec: packedColumn{rd}, data: data}
	}
	if ranged != nil {
		// The columns share the ReaderAt: the first cursor closes it.
		if len(o.cursors) == 0 {
			ranged.Close()
		}
		for _, cur := range o.cursors {
			cur.closer = ranged
			break
		}
	}
	return o, nil
}

// checkGroup checks a v2 file's columns against its group's child_fields
// (or, for legacy metadata, against the fields other groups claim) and its
// group_field_id_list against the segment's groups: the list must have one
// entry per group, in ascending group-ID order, as Milvus's own reader
// indexes it by position.
func (r *Reader) checkGroup(fr *fileRef, o opened) error {
	switch {
	case fr.child != nil:
		if !sameSet(o.holds, fr.child) {
			return fmt.Errorf("%s holds fields %v but its column group %d has child_fields %v", fr.name(), o.holds, fr.id, fr.child)
		}
	case r.claims[fr.id] == fr.id && fr.id >= startOfUserFieldID:
		if !slices.Equal(o.holds, []int64{fr.id}) {
			return fmt.Errorf("%s holds fields %v; column group %d has no child_fields, so it must hold field %d alone", fr.name(), o.holds, fr.id, fr.id)
		}
	default:
		for _, id := range o.holds {
			if gid, ok := r.claims[id]; ok {
				return fmt.Errorf("%s holds field %d, which column group %d claims", fr.name(), id, gid)
			}
		}
	}
	if len(o.groups) != r.groups || !slices.Equal(o.groups[fr.pos], o.holds) {
		return fmt.Errorf("%s: %s %v does not list the segment's %d column groups in ID order with this file's group (%d) at position %d",
			fr.name(), packed.KeyGroupFieldIDList, o.groups, r.groups, fr.id, fr.pos)
	}
	return nil
}

func sameSet(a, b []int64) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(id int64) bool { return !slices.Contains(b, id) })
}

// packedColumn is a packed.Reader projected to one field, as a decoder.
type packedColumn struct{ rd *packed.Reader }

func (p packedColumn) Next() (arrow.Array, error) {
	rec, err := p.rd.Next()
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	c := rec.Column(0)
	c.Retain()
	return c, nil
}

func (p packedColumn) Close() error { return p.rd.Close() }

func (oc *openChunk) close() {
	for _, cur := range oc.cursors {
		cur.close()
	}
}

func (c *cursor) close() {
	if c == nil {
		return
	}
	if c.pend != nil {
		c.pend.Release()
		c.pend = nil
	}
	c.dec.Close()
	c.data = nil
	if c.closer != nil {
		c.closer.Close()
		c.closer = nil
	}
}

// take returns the next n rows of the binlog as one array (the caller owns
// it): the decoded batch itself when it has exactly n rows left, else a
// slice, or a concatenation when n spans decoded batches.
func (c *cursor) take(n int) (arrow.Array, error) {
	var parts []arrow.Array
	release := func() {
		for _, p := range parts {
			p.Release()
		}
	}
	for need := n; need > 0; {
		if c.pend == nil {
			a, err := c.dec.Next()
			if errors.Is(err, io.EOF) {
				release()
				return nil, fmt.Errorf("%s ended %d rows early", c.name, need)
			}
			if err != nil {
				release()
				return nil, err
			}
			c.pend, c.off = a, 0
		}
		k := min(need, c.pend.Len()-c.off)
		if c.off == 0 && k == c.pend.Len() {
			parts = append(parts, c.pend)
			c.pend = nil
		} else {
			parts = append(parts, sliceOf(c.pend, c.off, c.off+k))
			c.off += k
			if c.off == c.pend.Len() {
				c.pend.Release()
				c.pend = nil
			}
		}
		need -= k
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	defer release()
	a, err := array.Concatenate(parts, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("%s: joining decoded batches: %w", c.name, err)
	}
	return a, nil
}

// sliceOf returns rows [i, j) of a as a new reference.
func sliceOf(a arrow.Array, i, j int) arrow.Array {
	return array.NewSlice(a, int64(i), int64(j))
}
