// Package objstore is the object-store abstraction the rest of compact-host
// reads Milvus segments from and writes compaction results to.
//
// Two backends implement [Store]:
//
//   - [Local], a directory on the local file system (the embedded default);
//   - [S3], any S3-compatible service (AWS S3, MinIO) through minio-go.
//
// [Open] picks a backend from a URL: "local:///data", a bare path such as
// "/data" or "./data", or "s3://bucket/root".
//
// # Keys
//
// Keys are slash-separated relative paths such as
// "files/insert_log/1/2/3/100/7". Both backends accept the same keys, so a
// key that works on one works on the other. A key must be non-empty, must not
// start or end with "/", must not contain empty segments ("a//b"), "." or ".."
// segments, backslashes or NUL bytes. Invalid keys are rejected with an error
// before any I/O.
//
// # Errors
//
// Every error names the operation, the key and the store. A missing object
// is reported as an error wrapping [ErrNotExist], so callers test
// errors.Is(err, objstore.ErrNotExist); a Create on an existing key as one
// wrapping [ErrExist].
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store is an object store holding immutable byte objects under string keys.
// All methods are safe for concurrent use.
type Store interface {
	// Get opens the whole object for reading. The caller must close the
	// reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// GetRange opens bytes [off, off+n) of the object, clipped to the object
	// size: n < 0 reads to the end, n == 0 yields an empty reader (after the
	// object's existence has been checked), off == size yields an empty
	// reader, and off > size or off < 0 is an error.
	GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)

	// Put stores the bytes of r under key, replacing any existing object.
	// size is the exact number of bytes r yields, or -1 when unknown; the
	// data is streamed, never held whole in memory. When size >= 0 and r
	// yields a different number of bytes, Put fails. A failed Put leaves any
	// previous object under key untouched (local) or unchanged (S3: the
	// upload is aborted).
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Create stores the bytes of r under key only if no object exists
	// there; size is as for Put. On an existing key it fails with an error
	// wrapping [ErrExist] and leaves that object untouched. The check and
	// the write are one atomic step of the backend (a hard link on the
	// local file system, If-None-Match: * on S3), so of several concurrent
	// Creates of one key, in any number of processes, exactly one succeeds.
	//
	// A failed Create leaves no object of its own under key, unless the
	// error wraps [ErrUnknownOutcome]: then the store could not learn
	// whether the object was created (the service became unreachable
	// after the request was sent), and the key may hold this Create's
	// object.
	Create(ctx context.Context, key string, r io.Reader, size int64) error

	// Stat returns the object's metadata.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List returns every object whose key starts with prefix (a plain string
	// prefix, not only whole segments; "" lists everything), recursively,
	// sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// String describes the store, e.g. "local:///data" or "s3://bucket/root".
	String() string
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // key relative to the store root
	Size    int64     // size in bytes
	ModTime time.Time // last modification time as reported by the backend
}

// ErrNotExist is wrapped by every error about a missing object.
var ErrNotExist = errors.New("object does not exist")

// ErrExist is wrapped by every error of a Create whose key already holds
// an object.
var ErrExist = errors.New("object already exists")

// ErrUnknownOutcome is wrapped by an error of a Create that may or may not
// have stored the object: see [Store].Create.
var ErrUnknownOutcome = errors.New("outcome unknown: the object may have been created")

// ErrInvalidKey is wrapped by every error about a malformed key or prefix.
var ErrInvalidKey = errors.New("invalid object key")

// opError is the error type of every Store method: it names the
// operation, the key and the store.
type opError struct {
	op    string
	key   string
	store string
	err   error
}

func (e *opError) Error() string {
	return fmt.Sprintf("objstore %s %q in %s: %v", e.op, e.key, e.store, e.err)
}

func (e *opError) Unwrap() error { return e.err }

func wrapErr(op string, s fmt.Stringer, key string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{op: op, key: key, store: s.String(), err: err}
}

// ValidateKey reports whether key is a valid object key (see the package
// documentation). The returned error wraps [ErrInvalidKey].
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: %q is absolute", ErrInvalidKey, key)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q ends with /", ErrInvalidKey, key)
	}
	return validatePath(key)
}

// validatePrefix checks a List prefix: "" is allowed, a trailing "/" is
// allowed, the rest follows the key rules.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w: prefix %q is absolute", ErrInvalidKey, prefix)
	}
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return fmt.Errorf("%w: prefix %q is empty", ErrInvalidKey, prefix)
	}
	// The last segment may be partial ("insert_log/1/2" matches
	// "insert_log/1/20/..."), so "." and ".." are only checked as whole
	// segments, which is exactly what validatePath does.
	return validatePath(p)
}

func validatePath(p string) error {
	if strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("%w: %q contains a backslash or NUL byte", ErrInvalidKey, p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidKey, p)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, p, seg)
		}
	}
	return nil
}

// checkRange validates GetRange arguments against a known object size and
// returns the number of bytes to read.
func checkRange(off, n, size int64) (int64, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off > size {
		return 0, fmt.Errorf("offset %d is beyond the object size %d", off, size)
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	return n, nil
}

// emptyReader is returned for zero-length ranges.
func emptyReader() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }
