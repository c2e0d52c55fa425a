package segread

import (
	"bytes"
	"context"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/objstore"
)

// ReadDeletes reads every deltalog of seg, FieldBinlogs and binlogs in list
// order, records in file order, and returns them concatenated. Every file's
// pks must be of pkType (Int64 or VarChar); a file with no records is
// accepted. Every descriptor must name seg's collection, partition and
// segment (else an error marked corrupt.Err). Deltalogs are read in place
// on a local store and fetched whole from others. Errors name the segment
// and the object key.
func ReadDeletes(ctx context.Context, store objstore.Store, pkType schemapb.DataType, seg *datapb.CompactionSegmentBinlogs) (*deltalog.Deletes, error) {
	if pkType != schemapb.DataType_Int64 && pkType != schemapb.DataType_VarChar {
		return nil, fmt.Errorf("segread: segment %d: pk type %v is neither Int64 nor VarChar", seg.GetSegmentID(), pkType)
	}
	out := &deltalog.Deletes{PKType: pkType}
	for _, fb := range seg.GetDeltalogs() {
		for _, b := range fb.GetBinlogs() {
			key := b.GetLogPath()
			if key == "" {
				return nil, fmt.Errorf("segread: segment %d: deltalog %d has no log_path (fill the plan's paths first)",
					seg.GetSegmentID(), b.GetLogID())
			}
			d, err := readDeltalog(ctx, store, key, ownerOf(seg))
			if err != nil {
				return nil, fmt.Errorf("segread: segment %d: %w", seg.GetSegmentID(), err)
			}
			if d.Len() > 0 && d.PKType != pkType {
				return nil, corrupt.Mark(fmt.Errorf("segread: segment %d: deltalog %q holds %v pks, the schema's pk is %v",
					seg.GetSegmentID(), key, d.PKType, pkType))
			}
			if err := out.Append(d); err != nil {
				return nil, fmt.Errorf("segread: segment %d: deltalog %q: %w", seg.GetSegmentID(), key, err)
			}
		}
	}
	return out, nil
}

func readDeltalog(ctx context.Context, store objstore.Store, key string, owner binlog.Owner) (*deltalog.Deletes, error) {
	if _, ok := store.(*objstore.Local); ok {
		ra, err := objstore.NewReaderAt(ctx, store, key)
		if err != nil {
			return nil, err
		}
		defer ra.Close()
		d, _, err := deltalog.ReadFor(key, ra, ra.Size(), owner)
		return d, err
	}
	data, err := getAll(ctx, store, key, 0)
	if err != nil {
		return nil, err
	}
	d, _, err := deltalog.ReadFor(key, bytes.NewReader(data), int64(len(data)), owner)
	return d, err
}

// getAll reads the whole object; sizeHint (the metadata's log_size, 0 when
// unknown) only presizes the buffer.
func getAll(ctx context.Context, store objstore.Store, key string, sizeHint int64) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint < 1<<31 {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, fmt.Errorf("reading %q from %s: %w", key, store, err)
	}
	return buf.Bytes(), nil
}
