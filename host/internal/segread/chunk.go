package segread

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/compacthost/compacthost/storage/binlog"
)

// openChunk is the chunk being decoded: one cursor per field with a file.
type openChunk struct {
	rows    int64
	pos     int64
	cursors []*cursor // nil where the field is filled
}

// cursor hands out exact row counts from one binlog's decoded batches.
type cursor struct {
	key  string
	ir   *binlog.InsertReader
	pend arrow.Array // decoded rows not handed out yet start at off
	off  int
	data []byte // the compressed object, kept until the chunk is done
}

// openChunk opens the binlog readers of c over the downloaded bytes and
// checks that every file holds as many rows as the chunk's entries_num, so
// that the rows delivered always add up to NumRows.
func (r *Reader) openChunk(c *chunk, data [][]byte) (*openChunk, error) {
	oc := &openChunk{cursors: make([]*cursor, len(c.files))}
	err := parallel(len(c.files), r.opts.Parallelism, func(fi int) error {
		fr := c.files[fi]
		if fr == nil {
			return nil
		}
		ir, err := binlog.NewInsertReader(fr.key, bytes.NewReader(data[fi]), int64(len(data[fi])), r.fields[fi], r.opts.BatchRows)
		if err != nil {
			return r.fieldErr(fi, err)
		}
		if err := ir.Descriptor().CheckOwner(r.owner); err != nil {
			ir.Close()
			return r.fieldErr(fi, fmt.Errorf("binlog %q: %w", fr.key, err))
		}
		oc.cursors[fi] = &cursor{key: fr.key, ir: ir, data: data[fi]}
		return nil
	})
	if err != nil {
		oc.close()
		return nil, err
	}
	oc.rows = c.rows
	for fi, cur := range oc.cursors {
		if cur == nil {
			continue
		}
		if n := cur.ir.NumRows(); n != c.rows {
			oc.close()
			return nil, r.fieldErr(fi, fmt.Errorf("chunk %d: binlog %q holds %d rows but the chunk's entries_num is %d", c.index, cur.key, n, c.rows))
		}
	}
	return oc, nil
}

func (oc *openChunk) close() {
	for _, cur := range oc.cursors {
		if cur == nil {
			continue
		}
		if cur.pend != nil {
			cur.pend.Release()
			cur.pend = nil
		}
		cur.ir.Close()
		cur.data = nil
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
			a, err := c.ir.Next()
			if errors.Is(err, io.EOF) {
				release()
				return nil, fmt.Errorf("binlog %q ended %d rows early", c.key, need)
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
		return nil, fmt.Errorf("binlog %q: joining decoded batches: %w", c.key, err)
	}
	return a, nil
}

// sliceOf returns rows [i, j) of a as a new reference.
func sliceOf(a arrow.Array, i, j int) arrow.Array {
	return array.NewSlice(a, int64(i), int64(j))
}
