package segwrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/packed"
	"github.com/compacthost/compacthost/storage/statslog"
)

// output is one output segment being written.
type output struct {
	index int
	segID int64
	rows  int64
	// insert has one FieldBinlog per file of a chunk, in log ID order: per
	// schema field in v1, per column group (groups, ascending ID) in v2.
	insert []*datapb.FieldBinlog
	groups []packed.Group
	cols   [][]int // v2: per group, its fields' indices in Writer.fields
	stats  *statslog.Builder
	statFB *datapb.FieldBinlog
	done   bool

	// VarChar pk range seen so far: a pk that extends it is cloned before
	// the stats builder keeps it (Arrow strings alias the column buffers).
	strMin, strMax string
	hasStr         bool

	// The current chunk: per field, slices of the appended columns.
	pieces     [][]arrow.Array
	chunkRows  int64
	chunkBytes int64 // Arrow bytes of the pieces (binlog.MemorySize)
	// chunkWritten is Milvus's running size of the chunk: chunkBytes with
	// Array fields scaled by binlog.ExpansionRatio. The chunk is flushed by
	// it, as Milvus flushes, though memory_size records chunkBytes.
	chunkWritten int64
	tsLo, tsHi   uint64 // row timestamp range of the chunk
	pinned       map[arrow.ArrayData]struct{}
	pinnedBytes  int64 // Arrow bytes of the whole source columns the pieces keep alive
	// The trailing run of short pieces (appends below shortRows rows),
	// joined into one piece per field once it holds joinRows rows.
	shortFrom, shortRows int
}

// Short runs (scattered deletes) make chunks of thousands of slices, and
// the Parquet writer pays per slice; joining them costs one copy of their
// rows. Measured on uniform 10% deletes, uncompressed 768-dim vectors:
// BENCH.md, issue 7, "Fixes".
const (
	shortRows = 256
	joinRows  = 4096
)

// newOutput starts an output; groups is its v2 column-group split (nil for
// v1).
func newOutput(w *Writer, index int, segID int64, groups []packed.Group) (*output, error) {
	pk := w.fields[w.pkIndex]
	b, err := statslog.NewBuilder(pk.GetFieldID(), pk.GetDataType(), w.cfg.BloomCapacity)
	if err != nil {
		return nil, fmt.Errorf("segwrite: output %d: %w", index, err)
	}
	o := &output{index: index, segID: segID, stats: b, pieces: make([][]arrow.Array, len(w.fields)),
		pinned: map[arrow.ArrayData]struct{}{}}
	if groups != nil {
		o.setGroups(w, groups)
	} else {
		for _, f := range w.fields {
			o.insert = append(o.insert, &datapb.FieldBinlog{FieldID: f.GetFieldID()})
		}
	}
	o.resetChunk()
	return o, nil
}

func (o *output) resetChunk() {
	for i := range o.pieces {
		// A released Arrow array still points at its buffers: clear the
		// slots, or the backing array keeps the chunk's input alive (for
		// good in a finished output, which the writer keeps for Close).
		clear(o.pieces[i])
		o.pieces[i] = o.pieces[i][:0]
	}
	o.chunkRows, o.chunkBytes, o.chunkWritten, o.pinnedBytes = 0, 0, 0, 0
	o.shortFrom, o.shortRows = 0, 0
	o.tsLo, o.tsHi = ^uint64(0), 0
	clear(o.pinned)
}

// append references rows [off, off+n) of every column and feeds the pk
// stats and the chunk's timestamp range.
func (o *output) append(w *Writer, cols map[int64]arrow.Array, off, n int) {
	src := cols[w.fields[0].GetFieldID()].Data()
	_, seen := o.pinned[src]
	if !seen {
		o.pinned[src] = struct{}{}
	}
	for i, f := range w.fields {
		c := cols[f.GetFieldID()]
		s := array.NewSlice(c, int64(off), int64(off+n))
		o.pieces[i] = append(o.pieces[i], s)
		size := binlog.MemorySize(s)
		o.chunkBytes += size
		o.chunkWritten += size * w.ratios[i]
		if !seen {
			o.pinnedBytes += binlog.MemorySize(c)
		}
	}
	for _, ts := range cols[timestampField].(*array.Int64).Int64Values()[off : off+n] {
		o.tsLo, o.tsHi = min(o.tsLo, uint64(ts)), max(o.tsHi, uint64(ts))
	}
	switch pk := cols[w.fields[w.pkIndex].GetFieldID()].(type) {
	case *array.Int64:
		for _, v := range pk.Int64Values()[off : off+n] {
			o.stats.AddInt64(v)
		}
	case *array.String:
		for i := off; i < off+n; i++ {
			v := pk.Value(i)
			if !o.hasStr || v < o.strMin || v > o.strMax {
				v = strings.Clone(v)
				if !o.hasStr || v < o.strMin {
					o.strMin = v
				}
				if !o.hasStr || v > o.strMax {
					o.strMax = v
				}
				o.hasStr = true
			}
			o.stats.AddVarChar(v)
		}
	}
	o.rows += int64(n)
	o.chunkRows += int64(n)
	if n >= shortRows {
		o.shortFrom, o.shortRows = len(o.pieces[0]), 0
		return
	}
	o.shortRows += n
}

// joinShort replaces the trailing short pieces with one piece per field
// once they hold joinRows rows.
func (o *output) joinShort() error {
	if o.shortRows < joinRows || len(o.pieces[0])-o.shortFrom < 2 {
		return nil
	}
	return o.joinFrom(o.shortFrom, "joining short runs")
}

// compact copies the chunk's pieces into one array per field so that the
// source batches they reference can be freed (many sparse appends would
// otherwise keep whole batches alive). It copies even one piece: it may be
// a slice of a large batch.
func (o *output) compact() error {
	if err := o.joinFrom(0, "compacting a chunk"); err != nil {
		return err
	}
	clear(o.pinned)
	o.pinnedBytes = o.chunkBytes
	return nil
}

// joinFrom replaces pieces [from:] of every field with one array holding
// their rows, and releases them.
func (o *output) joinFrom(from int, what string) error {
	for i, ps := range o.pieces {
		tail := ps[from:]
		if len(tail) == 0 {
			continue
		}
		a, err := array.Concatenate(tail, memory.DefaultAllocator)
		if err != nil {
			return fmt.Errorf("segwrite: output %d: %s: %w", o.index, what, err)
		}
		releaseAll(tail)
		clear(tail)
		o.pieces[i] = append(ps[:from], a)
	}
	o.shortFrom, o.shortRows = len(o.pieces[0]), 0
	return nil
}

// flush writes the current chunk: K consecutive log IDs in the order of
// o.insert (v1: schema fields; v2: ascending group ID), one object each,
// encoded and uploaded in parallel.
func (o *output) flush(ctx context.Context, w *Writer) error {
	if o.chunkRows == 0 {
		return nil
	}
	k := len(o.insert)
	first, err := w.cfg.LogIDs.Take(k)
	if err != nil {
		return fmt.Errorf("segwrite: output %d (segment %d): insert log IDs: %w", o.index, o.segID, err)
	}
	logs := make([]*datapb.Binlog, k)
	upload := func(i int) error {
		logID := first + int64(i)
		key := milvuspath.InsertLog(w.cfg.Root, w.cfg.CollectionID, w.cfg.PartitionID, o.segID, o.insert[i].FieldID, logID)
		f, err := o.encode(w, i)
		if err != nil {
			return fmt.Errorf("segwrite: %s: %w", key, err)
		}
		if err := w.create(ctx, key, f.r, f.size); err != nil {
			return fmt.Errorf("segwrite: output %d (segment %d): %w", o.index, o.segID, err)
		}
		logs[i] = &datapb.Binlog{EntriesNum: f.rows, TimestampFrom: o.tsLo, TimestampTo: o.tsHi,
			LogPath: key, LogSize: f.size, LogID: logID, MemorySize: f.mem}
		return nil
	}
	// The writer's first object is created alone: of two tasks given the
	// same output IDs, the one losing that key stops having created
	// nothing, so the other can finish.
	from := 0
	if !w.created.Load() {
		from, err = 1, upload(0)
	}
	if err == nil {
		err = parallel(k-from, w.cfg.UploadParallelism, func(i int) error { return upload(from + i) })
	}
	for _, ps := range o.pieces {
		releaseAll(ps)
	}
	o.resetChunk()
	if err != nil {
		return err
	}
	for i, b := range logs {
		o.insert[i].Binlogs = append(o.insert[i].Binlogs, b)
	}
	return nil
}

// encoded is one insert object of a chunk, ready to upload.
type encoded struct {
	r               io.Reader
	size, rows, mem int64 // object bytes, rows, memory_size
}

// encode encodes object i of the chunk (see o.insert).
func (o *output) encode(w *Writer, i int) (encoded, error) {
	if o.groups != nil {
		return o.encodeGroup(w, i)
	}
	f := w.fields[i]
	desc := binlog.Descriptor{Timestamp: w.cfg.Timestamp, CollectionID: w.cfg.CollectionID,
		PartitionID: w.cfg.PartitionID, SegmentID: o.segID}
	// The pieces are encoded as one column without joining them, and the
	// object is uploaded as header + payload without a second copy.
	e, err := binlog.EncodeInsertChunks(desc, f, o.pieces[i], w.cfg.FieldOptions[f.GetFieldID()])
	if err != nil {
		return encoded{}, err
	}
	return encoded{r: e.Reader(), size: e.Bytes, rows: e.Rows, mem: e.MemorySize}, nil
}

// finish writes the output's last chunk and its pk stats log. The order of
// their log IDs follows Milvus: its v1 stream writer takes the stats log's
// ID before it flushes the last chunk, its v2 packed writer takes the
// groups' IDs when it starts and the stats log's at close.
func (o *output) finish(ctx context.Context, w *Writer) error {
	o.done = true
	if o.groups != nil {
		if err := o.flush(ctx, w); err != nil {
			return err
		}
		return o.writeStats(ctx, w)
	}
	if err := o.writeStats(ctx, w); err != nil {
		return err
	}
	return o.flush(ctx, w)
}

// writeStats writes the output's pk stats log (one log ID).
func (o *output) writeStats(ctx context.Context, w *Writer) error {
	pk := w.fields[w.pkIndex]
	s, err := o.stats.Finish()
	if err != nil {
		return fmt.Errorf("segwrite: output %d (segment %d): %w", o.index, o.segID, err)
	}
	data, err := statslog.Encode(s)
	o.stats = nil
	if err != nil {
		return fmt.Errorf("segwrite: output %d (segment %d): %w", o.index, o.segID, err)
	}
	logID, err := w.cfg.LogIDs.Take(1)
	if err != nil {
		return fmt.Errorf("segwrite: output %d (segment %d): stats log ID: %w", o.index, o.segID, err)
	}
	key := milvuspath.StatsLog(w.cfg.Root, w.cfg.CollectionID, w.cfg.PartitionID, o.segID, pk.GetFieldID(), logID)
	if err := w.create(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("segwrite: output %d (segment %d): %w", o.index, o.segID, err)
	}
	o.statFB = &datapb.FieldBinlog{FieldID: pk.GetFieldID(), Binlogs: []*datapb.Binlog{{
		EntriesNum: o.rows, LogPath: key, LogSize: int64(len(data)), MemorySize: int64(len(data)), LogID: logID}}}
	return nil
}

func (o *output) result(w *Writer) *datapb.CompactionSegment {
	return &datapb.CompactionSegment{
		SegmentID: o.segID, NumOfRows: o.rows, InsertLogs: sortedByField(o.insert),
		Field2StatslogPaths: []*datapb.FieldBinlog{o.statFB}, Channel: w.cfg.Channel,
		IsSorted: w.cfg.IsSorted, StorageVersion: w.storageVersion(),
	}
}

// release drops the chunk's references (on Abort).
func (o *output) release() {
	for _, ps := range o.pieces {
		releaseAll(ps)
	}
	o.resetChunk()
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}

// parallel runs fn(0..n-1) with at most limit calls in flight and returns
// the error of the lowest failing index.
func parallel(n, limit int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
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
