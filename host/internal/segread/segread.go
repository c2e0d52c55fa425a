// Package segread is the read stage of the compaction pipeline: it streams
// one input segment's insert data as aligned column batches (every
// requested schema field as an Arrow array, in row order), downloading the
// next chunks' objects ahead and decoding fields in parallel, and reads a
// segment's deltalogs.
//
// Each segment is read in its own storage_version: 0 or 1 is storage v1
// (one binlog per field per chunk), 2 is storage v2 (one Parquet file per
// column group per chunk); any other version is refused. Batches look the
// same either way.
//
// v1 alignment follows Milvus's V1 reader (milvus-formats.md §9.6, §7):
// each field's binlogs are sorted by logID; chunk i is the i-th file of
// every field; a field with fewer files is aligned to the end and its
// missing leading chunks, like a field with no binlogs at all, are filled
// with its default value or nulls (an error for a field that is neither
// nullable nor has a default); all files of a chunk must hold the same
// number of rows.
//
// v2 alignment follows Milvus's packed reader (milvus-storage-v2.md §7.1,
// §8.4): FieldBinlogs (one per column group, fieldID = group ID) are sorted
// by group ID; chunk j is the j-th file (by logID) of every group; every
// group must have the same number of files (no end alignment) and a
// chunk's files the same rows. Columns are found by Parquet field_id only.
// Every file must sit under its group's directory, hold exactly its
// group's child_fields (legacy metadata without child_fields: what the
// file's group_field_id_list says) and carry a group_field_id_list with one
// entry per group in ID order. Fields in no group are filled as for v1.
//
// Options.Fields projects: only the objects holding a requested field are
// downloaded (v1 binlogs of those fields, v2 groups with one of them) and
// only the requested columns decoded.
//
// Memory: at most Options.Prefetch+1 chunks of compressed objects, the
// Parquet column chunks being decoded, and the current batch. A v1 binlog
// is downloaded whole, and so is a v2 file whose log_size is at most
// Options.DownloadLimit. A larger v2 file (Milvus's compactor writes one
// file per group for a whole segment, hundreds of MiB for a vector group),
// or one whose size the metadata does not state, is read in place with
// ranged reads, a row group's column chunks at a time.
package segread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// Options tunes a Reader. The zero value is usable.
type Options struct {
	// BatchRows is the most rows of a batch; 0 means binlog.DefaultBatchRows
	// (1024, Milvus's V1 reader batch). Batches never span two chunks, so
	// the last batch of each chunk may be shorter.
	BatchRows int
	// Prefetch is the number of chunks downloaded ahead of the chunk being
	// decoded; 0 means 1.
	Prefetch int
	// Parallelism bounds the objects of a chunk downloaded, and the fields
	// decoded, concurrently; 0 means GOMAXPROCS.
	Parallelism int
	// DownloadLimit is the largest v2 file downloaded whole (by its
	// log_size); larger files, and files of unknown size, are read in place
	// with ranged reads. 0 means DefaultDownloadLimit; negative reads every
	// v2 file in place.
	DownloadLimit int64
	// Fields are the schema fields to read, by ID; nil or empty means every
	// schema field. Only the objects holding them are downloaded (a v1
	// field's binlogs, the v2 column groups that hold one) and only their
	// columns decoded.
	Fields []int64
}

// DefaultDownloadLimit is Milvus's binlog_max_size: a v2 file Milvus
// flushed, or one of our chunks, is no larger than about this. The memory
// estimate counts on the same limit.
const DefaultDownloadLimit = mempool.DefaultDownloadLimit

func (o Options) withDefaults() Options {
	if o.DownloadLimit == 0 {
		o.DownloadLimit = DefaultDownloadLimit
	}
	if o.BatchRows <= 0 {
		o.BatchRows = binlog.DefaultBatchRows
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 1
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	return o
}

// Batch is a run of consecutive rows of one segment, every requested field
// present. The caller owns it and must Release it.
type Batch struct {
	FirstRow int64                 // row offset of the batch within its segment
	Rows     int                   // number of rows; every column has this length
	Columns  map[int64]arrow.Array // every requested field (Options.Fields), by field ID
	RowSizes []uint32              // the shared row-size definition (RowSizes) over the requested fields
	Bytes    int64                 // sum of RowSizes (uncompressed bytes)
}

// Release releases the batch's columns. It is safe to call more than once.
func (b *Batch) Release() {
	for id, c := range b.Columns {
		c.Release()
		delete(b.Columns, id)
	}
}

// Reader streams the rows of one segment. It is not safe for concurrent
// use.
type Reader struct {
	segID   int64
	version int64                      // the segment's storage_version
	owner   binlog.Owner               // what every binlog descriptor must name
	schema  *schemapb.CollectionSchema // the requested fields only: what RowSizes counts
	fields  []*schemapb.FieldSchema    // the requested fields, in schema order
	outIdx  map[int64]int              // field ID -> index in fields
	all     []*schemapb.FieldSchema    // every field of the collection (packed.AllFields)
	claims  map[int64]int64            // v2: field ID -> column group, as the metadata says
	groups  int                        // v2: the segment's column groups
	chunks  []chunk
	opts    Options
	numRows int64
	fills   []arrow.Array // per requested field: BatchRows rows of its default or nulls; nil if never needed

	store   objstore.Store
	dctx    context.Context // Open's ctx: governs the downloads
	cancel  context.CancelFunc
	started bool
	done    chan struct{}   // closed when the downloader exits
	ready   chan downloaded // downloaded chunks, in order
	tokens  chan struct{}   // one per chunk of compressed bytes held
	stop    error           // why the downloader stopped early; read after ready is closed
	closed  atomic.Bool
	err     error // sticky: the first error Next returned

	cur      *openChunk
	next     int   // index of the next chunk to take from ready
	firstRow int64 // row offset of the next batch
}

type downloaded struct {
	index int
	data  [][]byte // per object of the chunk
	err   error
}

// Open plans the reading of seg's insert data in the segment's own
// storage_version (0 or 1: v1 binlogs, 2: v2 column-group files) and
// checks its metadata's alignment against schema (keys must be filled in:
// milvuspath.FillPlan). Next checks every object against seg: a v1
// binlog's descriptor (collection, partition, segment, field ID, payload
// type), a v2 file's columns and footer (child_fields, group list, row
// counts); a mismatch is marked corrupt.Err. Open does no I/O: the first
// Next starts downloading in the background, so readers opened for
// segments consumed one after another do not all hold chunks at once. ctx
// governs those downloads until Close. Errors name the segment, the field
// or column group, and the object key.
func Open(ctx context.Context, store objstore.Store, schema *schemapb.CollectionSchema, seg *datapb.CompactionSegmentBinlogs, opts Options) (*Reader, error) {
	opts = opts.withDefaults()
	segID := seg.GetSegmentID()
	fields, err := requested(schema, opts.Fields)
	if err != nil {
		return nil, fmt.Errorf("segread: segment %d: %w", segID, err)
	}
	for _, f := range fields {
		if _, err := binlog.ArrowType(f); err != nil {
			return nil, fmt.Errorf("segread: segment %d: %w", segID, err)
		}
	}
	all := packed.AllFields(schema)
	var p plan
	switch v := seg.GetStorageVersion(); {
	case packed.IsSegmentV1(v):
		p, err = planV1(segID, schema.GetFields(), fields, seg)
	case v == packed.SegmentV2:
		p, err = planV2(segID, all, fields, seg)
	default:
		err = fmt.Errorf("segread: segment %d: storage_version %d is not supported (this host reads 0/1 = v1 and 2 = v2)", segID, v)
	}
	if err != nil {
		return nil, err
	}
	r := &Reader{segID: segID, version: seg.GetStorageVersion(), owner: ownerOf(seg),
		schema: &schemapb.CollectionSchema{Fields: fields}, fields: fields, outIdx: make(map[int64]int, len(fields)),
		all: all, claims: p.claims, groups: p.groups, chunks: p.chunks, opts: opts, fills: make([]arrow.Array, len(fields))}
	for oi, f := range fields {
		r.outIdx[f.GetFieldID()] = oi
	}
	for _, c := range r.chunks {
		r.numRows += c.rows
	}
	for oi, fill := range p.fills {
		if fill {
			if err := r.needFill(oi); err != nil {
				r.releaseFills()
				return nil, err
			}
		}
	}
	r.dctx, r.cancel = context.WithCancel(ctx)
	r.store = store
	r.done = make(chan struct{})
	r.ready = make(chan downloaded, opts.Prefetch+1)
	r.tokens = make(chan struct{}, opts.Prefetch+1)
	return r, nil
}

// requested returns the schema fields ids names, in schema order; every
// field when ids is empty.
func requested(schema *schemapb.CollectionSchema, ids []int64) ([]*schemapb.FieldSchema, error) {
	if len(ids) == 0 {
		return schema.GetFields(), nil
	}
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if want[id] {
			return nil, fmt.Errorf("field %d is requested twice", id)
		}
		want[id] = true
	}
	var out []*schemapb.FieldSchema
	for _, f := range schema.GetFields() {
		if want[f.GetFieldID()] {
			out = append(out, f)
			delete(want, f.GetFieldID())
		}
	}
	for _, id := range ids {
		if want[id] {
			return nil, fmt.Errorf("requested field %d is not in the schema", id)
		}
	}
	return out, nil
}

// needFill makes sure requested field oi has its fill: its default value
// or nulls, for the rows no object holds.
func (r *Reader) needFill(oi int) error {
	if r.fills[oi] != nil {
		return nil
	}
	f := r.fields[oi]
	err := canFill(f)
	if err == nil {
		r.fills[oi], err = buildFill(f, r.opts.BatchRows)
	}
	if err != nil {
		return r.fieldErr(oi, fmt.Errorf("no object of the segment holds it and it cannot be filled: %w", err))
	}
	return nil
}

// ownerOf is what the plan says seg's binlogs belong to.
func ownerOf(seg *datapb.CompactionSegmentBinlogs) binlog.Owner {
	return binlog.Owner{CollectionID: seg.GetCollectionID(), PartitionID: seg.GetPartitionID(), SegmentID: seg.GetSegmentID()}
}

// NumRows returns the segment's row count from the binlog metadata
// (entries_num). Next checks every payload against it, so the batches
// always add up to NumRows or Next fails.
func (r *Reader) NumRows() int64 { return r.numRows }

// download fetches the chunks in order, each chunk's files in parallel,
// holding at most Prefetch+1 chunks (a token each) at a time.
func (r *Reader) download(ctx context.Context, store objstore.Store) {
	defer close(r.done)
	defer close(r.ready)
	for i := range r.chunks {
		select {
		case r.tokens <- struct{}{}:
		case <-ctx.Done():
			r.stop = context.Cause(ctx)
			return
		}
		c := &r.chunks[i]
		d := downloaded{index: i, data: make([][]byte, len(c.files))}
		d.err = parallel(len(c.files), r.opts.Parallelism, func(fi int) error {
			fr := c.files[fi]
			if r.inPlace(fr) {
				return nil // openPacked reads it with ranged reads
			}
			data, err := getAll(ctx, store, fr.key, fr.size)
			if err != nil {
				return r.objErr(fr, err)
			}
			d.data[fi] = data
			return nil
		})
		r.ready <- d // never blocks: ready holds as many entries as there are tokens
		if d.err != nil {
			return
		}
	}
}

// inPlace reports whether fr is a v2 file too large (or of unknown size)
// to download whole.
func (r *Reader) inPlace(fr *fileRef) bool {
	return fr.v2 && (fr.size <= 0 || fr.size > r.opts.DownloadLimit)
}

func (r *Reader) fieldErr(oi int, err error) error {
	f := r.fields[oi]
	return fmt.Errorf("segread: segment %d field %d (%s): %w", r.segID, f.GetFieldID(), f.GetName(), err)
}

// objErr names fr's field (v1) or column group (v2) in err.
func (r *Reader) objErr(fr *fileRef, err error) error {
	if fr.v2 {
		return fmt.Errorf("segread: segment %d column group %d: %w", r.segID, fr.id, err)
	}
	return r.fieldErr(r.outIdx[fr.id], err)
}

// Next returns the next batch of at most BatchRows rows, or io.EOF itself
// after the last one; no other error it returns matches io.EOF. Batches
// never span two chunks. After an error every later call returns the same
// error.
func (r *Reader) Next(ctx context.Context) (*Batch, error) {
	if r.closed.Load() {
		return nil, fmt.Errorf("segread: segment %d: Next after Close", r.segID)
	}
	if r.err != nil {
		return nil, r.err
	}
	b, err := r.next1(ctx)
	if err != nil && err != io.EOF {
		r.err = notEOF(err)
		return nil, r.err
	}
	return b, err
}

// notEOF keeps an error that wraps io.EOF (an object whose decoder ran out
// of bytes) from reading as the end of the segment, which callers test
// with errors.Is: it becomes an error with the same text and
// io.ErrUnexpectedEOF, marked corrupt.Err unless the store failed.
func notEOF(err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	err2 := fmt.Errorf("%s (%w)", err, io.ErrUnexpectedEOF)
	if errors.Is(err, corrupt.Err) || !objstore.IsStoreError(err) {
		return corrupt.Mark(err2)
	}
	return err2
}

func (r *Reader) next1(ctx context.Context) (*Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("segread: segment %d: %w", r.segID, err)
		}
		if r.cur == nil {
			if r.next == len(r.chunks) {
				return nil, io.EOF
			}
			if !r.started {
				r.started = true
				go r.download(r.dctx, r.store)
			}
			if err := r.openNext(ctx); err != nil {
				return nil, err
			}
		}
		if r.cur.pos < r.cur.rows {
			return r.batch()
		}
		r.finishChunk()
	}
}

// openNext waits for the next downloaded chunk and opens its readers.
func (r *Reader) openNext(ctx context.Context) error {
	var d downloaded
	var ok bool
	select {
	case d, ok = <-r.ready:
	case <-ctx.Done():
		return fmt.Errorf("segread: segment %d: %w", r.segID, ctx.Err())
	}
	if !ok {
		return fmt.Errorf("segread: segment %d: downloads stopped: %w", r.segID, r.stop)
	}
	r.next++
	if d.err != nil {
		<-r.tokens
		return d.err
	}
	oc, err := r.openChunk(&r.chunks[d.index], d.data)
	if err != nil {
		<-r.tokens
		return err
	}
	r.cur = oc
	return nil
}

// finishChunk drops the current chunk's readers and bytes and lets the
// downloader fetch one more chunk.
func (r *Reader) finishChunk() {
	if r.cur == nil {
		return
	}
	r.cur.close()
	r.cur = nil
	<-r.tokens
}

func (r *Reader) batch() (*Batch, error) {
	oc := r.cur
	n := int(min(int64(r.opts.BatchRows), oc.rows-oc.pos))
	cols := make([]arrow.Array, len(r.fields))
	err := parallel(len(r.fields), r.opts.Parallelism, func(fi int) error {
		if cur := oc.cursors[fi]; cur != nil {
			a, err := cur.take(n)
			if err != nil {
				return r.fieldErr(fi, err)
			}
			cols[fi] = a
			return nil
		}
		cols[fi] = sliceOf(r.fills[fi], 0, n)
		return nil
	})
	if err != nil {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
		return nil, err
	}
	b := &Batch{FirstRow: r.firstRow, Rows: n, Columns: make(map[int64]arrow.Array, len(cols))}
	for fi, c := range cols {
		b.Columns[r.fields[fi].GetFieldID()] = c
	}
	b.RowSizes = RowSizes(r.schema, b.Columns, n)
	for _, s := range b.RowSizes {
		b.Bytes += int64(s)
	}
	oc.pos += int64(n)
	r.firstRow += int64(n)
	return b, nil
}

// Close stops the downloads and releases everything the reader holds. It
// does not release batches already returned.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.cancel()
	if r.started {
		<-r.done
	}
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	r.releaseFills()
	return nil
}

func (r *Reader) releaseFills() {
	for i, f := range r.fills {
		if f != nil {
			f.Release()
			r.fills[i] = nil
		}
	}
}

// parallel runs fn(0..n-1) on at most limit goroutines and returns the
// error of the lowest failing index.
func parallel(n, limit int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, max(limit, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
