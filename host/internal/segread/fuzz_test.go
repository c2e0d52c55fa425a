package segread_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segread"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// overlay serves data for key and the underlying store for every other key.
type overlay struct {
	objstore.Store
	key  string
	data []byte
}

func (o overlay) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == o.key {
		return io.NopCloser(bytes.NewReader(o.data)), nil
	}
	return o.Store.Get(ctx, key)
}

// FuzzV2Segment replaces one column-group file of a generated two-chunk v2
// segment with mutated bytes and reads the whole segment: every read ends
// in rows adding up to NumRows or in an error naming the segment and the
// object, never in a panic or a hang.
//
//	go test ./host/internal/segread -run XXX -fuzz FuzzV2Segment -fuzztime 10s -fuzzminimizetime 20x
func FuzzV2Segment(f *testing.F) {
	base := objstoretest.Local(f)
	cfg := smallConfig(schemapb.DataType_VarChar)
	cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.Dim, cfg.StorageVersion = 1, 40, 25, 4, 2
	col := generate(f, base, cfg)
	seg := col.Segments[0]
	var keys []string
	for _, fb := range seg.FieldBinlogs {
		for _, b := range fb.Binlogs {
			keys = append(keys, b.LogPath)
		}
	}
	for i, k := range keys {
		f.Add(uint8(i), objstoretest.ReadAll(f, base, k))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		key := keys[int(which)%len(keys)]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := segread.Open(ctx, overlay{Store: base, key: key, data: data}, col.Schema, seg, segread.Options{BatchRows: 16, Parallelism: 2})
		if err != nil {
			t.Fatalf("Open (no I/O) failed: %v", err)
		}
		defer r.Close()
		var rows int64
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				if rows != r.NumRows() {
					t.Fatalf("read %d rows, NumRows %d", rows, r.NumRows())
				}
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "segment 450000000000000100") {
					t.Fatalf("error does not name the segment and %q: %v", key, err)
				}
				return
			}
			rows += int64(b.Rows)
			b.Release()
		}
	})
}
