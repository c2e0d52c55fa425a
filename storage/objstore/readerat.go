package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ReaderAt reads an object at arbitrary offsets, as Parquet readers need.
// On a [Local] store it reads the open file with pread; on other stores
// each ReadAt is one ranged GET. It is safe for concurrent use. The object
// is assumed immutable while the ReaderAt is open (Milvus never rewrites a
// log object in place).
type ReaderAt struct {
	ctx   context.Context
	store Store
	key   string
	size  int64
	file  *os.File // non-nil on a Local store
}

var _ io.ReaderAt = (*ReaderAt)(nil)

// NewReaderAt stats key once and returns a ReaderAt over it. ctx is used
// by every later ReadAt. The caller must Close it.
func NewReaderAt(ctx context.Context, s Store, key string) (*ReaderAt, error) {
	if l, ok := s.(*Local); ok {
		f, size, err := l.openFile(ctx, key)
		if err != nil {
			return nil, wrapErr("open", l, key, err)
		}
		return &ReaderAt{ctx: ctx, store: s, key: key, size: size, file: f}, nil
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	return &ReaderAt{ctx: ctx, store: s, key: key, size: info.Size}, nil
}

// Size returns the object size in bytes.
func (r *ReaderAt) Size() int64 { return r.size }

// Key returns the object key.
func (r *ReaderAt) Key() string { return r.key }

// ReadAt implements io.ReaderAt: it fills p from offset off and returns
// io.EOF when the object ends before p is full.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, wrapErr("read", r.store, r.key, fmt.Errorf("negative offset %d", off))
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	var n int
	var err error
	if r.file != nil {
		n, err = r.file.ReadAt(p[:want], off)
	} else {
		n, err = r.readRange(p[:want], off)
	}
	if err != nil && err != io.EOF {
		var oe *opError
		if errors.As(err, &oe) {
			return n, err // already names the key and store
		}
		return n, wrapErr("read", r.store, r.key, fmt.Errorf("at offset %d: %w", off, err))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *ReaderAt) readRange(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, err := r.store.GetRange(r.ctx, r.key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("object is shorter than its stat size %d", r.size)
	}
	return n, err
}

// Close releases the file handle of a local ReaderAt.
func (r *ReaderAt) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}
