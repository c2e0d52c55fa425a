// Package segwrite is the write stage of the compaction pipeline: it packs
// row ranges of column batches into output segments, in chunks of about
// binlog_max_size uncompressed bytes, with a primary-key stats log per
// output and the CompactionSegment records of the result. WriteDeltalog
// writes an L0 compaction's deltalog.
//
// Config.StorageVersion picks the insert format. Storage v1
// (milvus-formats.md §4.4) writes one insert binlog per field per chunk
// under K consecutive log IDs. Storage v2 (milvus-storage-v2.md §2-§5)
// splits the fields into Milvus's column groups and writes one packed
// Parquet file per group per chunk, under
// insert_log/{coll}/{part}/{seg}/{groupID}/{logID}, with one FieldBinlog
// per group (fieldID = group ID, child_fields = its fields). Both versions
// share the chunking; stats logs and deltalogs are v1 formats in both, as
// in Milvus 2.6.
//
// Every object is written with Create, under its final key: it belongs to
// a new segment ID (or log ID) that nothing references until the result is
// reported, so an object already there is someone else's and the write
// fails instead of replacing it. The writer remembers the keys it created,
// and Abort deletes exactly those.
package segwrite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/packed"
)

// Defaults for zero Config values.
const (
	DefaultChunkBytes        = 64 << 20 // Milvus's binlog_max_size
	DefaultBloomCapacity     = 1_000_000
	DefaultUploadParallelism = 4
)

// Config describes the outputs of one compaction task.
type Config struct {
	Store        objstore.Store
	Root         string // Milvus root path, e.g. "files"
	Schema       *schemapb.CollectionSchema
	CollectionID int64
	PartitionID  int64
	Channel      string
	SegmentIDs   *IDRange // one ID per output (and for the placeholder)
	// LogIDs gives K per chunk (K = schema fields in v1, column groups in
	// v2) and 1 per stats log.
	LogIDs *IDRange
	// StorageVersion is the insert format of the outputs (the plan's
	// json_params.storage_version): 0 or 1 for storage v1, 2 for storage v2
	// column groups. Other values make New fail.
	StorageVersion int64
	// SplitPolicy is the column-group split of v2 outputs; nil means
	// packed.DefaultSplitPolicy(), a stock DataNode's. With SplitByAvgSize
	// each output's averages come from the first rows appended to it, as
	// Milvus's compaction writer takes them from its first record; an
	// AvgSizeThreshold of 0 means Milvus's 1024 bytes.
	SplitPolicy *packed.SplitPolicy
	// RowGroupBytes is the estimated Arrow memory at which a v2 file's
	// Parquet row group is cut; 0 means packed.DefaultRowGroupBytes (1 MiB).
	RowGroupBytes int64
	// VectorDictionary dictionary-encodes v2 dense-vector columns as
	// milvus-storage does (packed.WriterOptions.VectorDictionary).
	VectorDictionary bool
	// ChunkBytes is binlog_max_size: a chunk is flushed once its size as
	// Milvus's writer counts it reaches it (binlog.MemorySize, Array fields
	// times binlog.ExpansionRatio); 0 means 64 MiB.
	ChunkBytes int64
	// BloomCapacity is the rows estimate each output's bloom filter is sized
	// for (FPR 0.001); 0 means DefaultBloomCapacity.
	BloomCapacity int
	// Timestamp is the binlog header timestamp (the plan's start time), so
	// that the same input always gives the same bytes.
	Timestamp uint64
	IsSorted  bool // copied into every CompactionSegment
	// FieldOptions overrides the Parquet options per field ID (e.g.
	// uncompressed vectors) of v1 binlogs; other fields get Milvus's
	// defaults. v2 files are always written as Milvus writes them (ZSTD-3).
	FieldOptions map[int64]binlog.WriterOptions
	// UploadParallelism bounds the binlogs encoded and uploaded at once;
	// 0 means DefaultUploadParallelism.
	UploadParallelism int
}

// Writer writes output segments. Append, Close and Abort must not be
// called concurrently; Stats may be called from any goroutine.
type Writer struct {
	cfg     Config
	fields  []*schemapb.FieldSchema
	types   []arrow.DataType
	ratios  []int64 // binlog.ExpansionRatio per field
	pkIndex int
	tsIndex int

	// v2 only: the split policy and, unless it splits by average size
	// (per output), the split every output uses.
	policy packed.SplitPolicy
	groups []packed.Group

	outputs []*output
	err     error // sticky: the first failure; the writer only aborts after it
	closed  bool
	aborted bool

	mu      sync.Mutex
	made    Created     // the keys this writer created (or may have)
	created atomic.Bool // a Create succeeded

	rows  atomic.Int64
	bytes atomic.Int64
}

// New checks cfg and returns a Writer. The schema needs exactly one Int64
// or VarChar primary key and the Timestamp field 1 (Int64).
func New(cfg Config) (*Writer, error) {
	if cfg.Store == nil {
		return nil, errors.New("segwrite: no store")
	}
	if cfg.SegmentIDs == nil || cfg.LogIDs == nil {
		return nil, errors.New("segwrite: segment and log ID ranges are required")
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = DefaultChunkBytes
	}
	if cfg.BloomCapacity <= 0 {
		cfg.BloomCapacity = DefaultBloomCapacity
	}
	if cfg.UploadParallelism <= 0 {
		cfg.UploadParallelism = DefaultUploadParallelism
	}
	w := &Writer{cfg: cfg, fields: cfg.Schema.GetFields(), pkIndex: -1, tsIndex: -1}
	for i, f := range w.fields {
		t, err := binlog.ArrowType(f)
		if err != nil {
			return nil, fmt.Errorf("segwrite: %w", err)
		}
		w.types = append(w.types, t)
		w.ratios = append(w.ratios, binlog.ExpansionRatio(f))
		if f.GetIsPrimaryKey() {
			if w.pkIndex >= 0 {
				return nil, fmt.Errorf("segwrite: schema has two primary keys, fields %d and %d", w.fields[w.pkIndex].GetFieldID(), f.GetFieldID())
			}
			if f.GetDataType() != schemapb.DataType_Int64 && f.GetDataType() != schemapb.DataType_VarChar {
				return nil, fmt.Errorf("segwrite: primary key field %d has type %s, want Int64 or VarChar", f.GetFieldID(), f.GetDataType())
			}
			w.pkIndex = i
		}
		if f.GetFieldID() == timestampField {
			if f.GetDataType() != schemapb.DataType_Int64 {
				return nil, fmt.Errorf("segwrite: Timestamp field 1 has type %s, want Int64", f.GetDataType())
			}
			w.tsIndex = i
		}
	}
	if w.pkIndex < 0 {
		return nil, errors.New("segwrite: schema has no primary key")
	}
	if w.tsIndex < 0 {
		return nil, errors.New("segwrite: schema has no Timestamp field 1")
	}
	switch v := cfg.StorageVersion; {
	case packed.IsSegmentV1(v):
	case v == packed.SegmentV2:
		if err := w.initSplit(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("segwrite: storage_version %d is not supported (0/1 = v1, 2 = v2)", cfg.StorageVersion)
	}
	return w, nil
}

const timestampField = 1

// Append adds rows [offset, offset+count) of every column (cols holds every
// schema field by ID) to output number output. Outputs are numbered densely
// from 0 in the order they start; starting output k+1 finishes output k
// (stats log, last chunk), so later rows cannot go to an earlier output.
// The columns are referenced, not copied, until their chunk is flushed;
// the caller may release its references at once. A failed Append leaves
// the writer failed: only Abort is useful then.
func (w *Writer) Append(ctx context.Context, output int, cols map[int64]arrow.Array, offset, count int) error {
	if err := w.usable(); err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	if err := w.checkColumns(output, cols, offset, count); err != nil {
		return err
	}
	o, err := w.outputFor(ctx, output, cols, offset, count)
	if err != nil {
		return w.fail(err)
	}
	o.append(w, cols, offset, count)
	w.rows.Add(int64(count))
	if err := o.joinShort(); err != nil {
		return w.fail(err)
	}
	if o.chunkWritten >= w.cfg.ChunkBytes {
		if err := o.flush(ctx, w); err != nil {
			return w.fail(err)
		}
	} else if o.pinnedBytes-o.chunkBytes > w.cfg.ChunkBytes {
		if err := o.compact(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *Writer) usable() error {
	switch {
	case w.err != nil:
		return w.err
	case w.aborted:
		return errors.New("segwrite: writer was aborted")
	case w.closed:
		return errors.New("segwrite: writer is closed")
	}
	return nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) checkColumns(output int, cols map[int64]arrow.Array, offset, count int) error {
	if offset < 0 || count < 0 {
		return fmt.Errorf("segwrite: output %d: bad row range offset %d count %d", output, offset, count)
	}
	for i, f := range w.fields {
		c := cols[f.GetFieldID()]
		if c == nil {
			return fmt.Errorf("segwrite: output %d: no column for field %d (%s)", output, f.GetFieldID(), f.GetName())
		}
		if !arrow.TypeEqual(c.DataType(), w.types[i]) {
			return fmt.Errorf("segwrite: output %d: field %d (%s) column has type %s, want %s",
				output, f.GetFieldID(), f.GetName(), c.DataType(), w.types[i])
		}
		if offset+count > c.Len() {
			return fmt.Errorf("segwrite: output %d: rows [%d, %d) are beyond field %d's %d rows",
				output, offset, offset+count, f.GetFieldID(), c.Len())
		}
	}
	return nil
}

// outputFor returns output number n, starting it (and finishing the
// previous ones) when n is the next number; rows [off, off+count) of cols
// are its first rows.
func (w *Writer) outputFor(ctx context.Context, n int, cols map[int64]arrow.Array, off, count int) (*output, error) {
	switch {
	case n < 0 || n > len(w.outputs):
		return nil, fmt.Errorf("segwrite: output %d does not follow output %d (outputs are numbered densely from 0)", n, len(w.outputs)-1)
	case n < len(w.outputs):
		o := w.outputs[n]
		if o.done {
			return nil, fmt.Errorf("segwrite: output %d (segment %d) was finished when output %d started", n, o.segID, len(w.outputs)-1)
		}
		return o, nil
	}
	for _, o := range w.outputs {
		if !o.done {
			if err := o.finish(ctx, w); err != nil {
				return nil, err
			}
		}
	}
	segID, err := w.cfg.SegmentIDs.Take(1)
	if err != nil {
		return nil, fmt.Errorf("segwrite: output %d: segment ID: %w", n, err)
	}
	groups, err := w.split(cols, off, count)
	if err != nil {
		return nil, fmt.Errorf("segwrite: output %d (segment %d): %w", n, segID, err)
	}
	o, err := newOutput(w, n, segID, groups)
	if err != nil {
		return nil, err
	}
	w.outputs = append(w.outputs, o)
	return o, nil
}

// Close finishes every output (its last chunk and stats log) and returns
// their CompactionSegments in output order. When nothing was appended it
// returns one placeholder segment with 0 rows and no logs, its ID from the
// segment range, as Milvus does.
func (w *Writer) Close(ctx context.Context) ([]*datapb.CompactionSegment, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	w.closed = true
	var segs []*datapb.CompactionSegment
	for _, o := range w.outputs {
		if !o.done {
			if err := o.finish(ctx, w); err != nil {
				return nil, w.fail(err)
			}
		}
		segs = append(segs, o.result(w))
	}
	if len(segs) == 0 {
		id, err := w.cfg.SegmentIDs.Take(1)
		if err != nil {
			return nil, w.fail(fmt.Errorf("segwrite: placeholder segment ID: %w", err))
		}
		segs = append(segs, &datapb.CompactionSegment{SegmentID: id, Channel: w.cfg.Channel, IsSorted: w.cfg.IsSorted,
			StorageVersion: w.storageVersion()})
	}
	return segs, nil
}

// Abort deletes every object the writer created, also after Close (when a
// later stage of the task failed), and leaves the writer unusable. It never
// deletes a key whose Create failed: that object, if any, is not the
// writer's. Failed deletes are retried until ctx ends (see
// Created.Delete); when ctx is already cancelled the deletes run under a
// fresh one-minute context derived from it. What remains is reported as a
// *LeftError.
func (w *Writer) Abort(ctx context.Context) error {
	w.aborted = true
	for _, o := range w.outputs {
		o.release()
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
	}
	w.mu.Lock()
	made := w.made
	w.made = Created{}
	w.mu.Unlock()
	return made.Delete(ctx, w.cfg.Store, w.cfg.UploadParallelism)
}

// Stats returns the rows appended and the bytes uploaded (insert binlogs
// and stats logs) so far.
func (w *Writer) Stats() (rows, bytes int64) { return w.rows.Load(), w.bytes.Load() }

// create uploads the size bytes of r under key if no object is there, and
// records the key for Abort once the outcome is known.
func (w *Writer) create(ctx context.Context, key string, r io.Reader, size int64) error {
	err := w.cfg.Store.Create(ctx, key, r, size)
	w.mu.Lock()
	w.made.Record(key, err)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.created.Store(true)
	w.bytes.Add(size)
	return nil
}

func sortedByField(fbs []*datapb.FieldBinlog) []*datapb.FieldBinlog {
	out := slices.Clone(fbs)
	slices.SortStableFunc(out, func(a, b *datapb.FieldBinlog) int { return cmp.Compare(a.FieldID, b.FieldID) })
	return out
}
