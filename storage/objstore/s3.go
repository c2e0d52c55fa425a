package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
)

// S3 is a [Store] on an S3-compatible service (AWS S3, MinIO), reached
// through minio-go. Object key k is stored as "<root>/k" in the bucket.
//
// Retries: minio-go retries every request whose body it can replay, up to
// Options.MaxRetries attempts with exponential backoff and jitter, on
// network errors, HTTP 408/429/5xx and S3 throttling / "slow down" codes.
// It cannot retry a request whose body is a one-shot stream, and it never
// retries a response body that breaks while being read. S3 adds both:
//
//   - Put buffers bodies up to the part size in memory (for an unknown size:
//     the first part size of the stream), so a single-request PUT becomes
//     replayable; larger bodies go through multipart upload, where minio-go
//     buffers and retries each part. Memory per Put is thus at most about
//     two part sizes. Create buffers the same way (see Create for its
//     conditional requests).
//   - Readers returned by Get and GetRange resume after a broken body: they
//     re-request the remaining byte range, pinned to the original ETag so
//     the bytes cannot come from a newer object, with backoff, up to
//     MaxRetries consecutive failures without progress.
//
// Integrity is minio-go's default: on plain-HTTP endpoints every uploaded
// body is signed chunk by chunk with SHA-256, which the server verifies;
// over TLS the payload is unsigned and TLS protects it. (Automatic CRC32C
// checksums were tried and rejected: minio-go v7.4.1's composite multipart
// checksum is refused by the pinned MinIO release with
// XAmzContentChecksumMismatch.)
type S3 struct {
	client     *minio.Client
	core       minio.Core
	bucket     string
	root       string // no leading or trailing "/"; "" for the bucket root
	partSize   uint64
	maxRetries int
}

var _ Store = (*S3)(nil)

// String returns "s3://bucket/root".
func (s *S3) String() string {
	if s.root == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.root
}

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

func (s *S3) full(key string) string {
	if s.root == "" {
		return key
	}
	return s.root + "/" + key
}

// mapS3Err maps "no such key" responses to ErrNotExist.
func mapS3Err(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case minio.NoSuchKey:
		return fmt.Errorf("%w (%s)", ErrNotExist, resp.Code)
	case minio.NoSuchBucket:
		return fmt.Errorf("bucket does not exist: %w", err)
	}
	return err
}

// Stat implements [Store].
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, wrapErr("stat", s, key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.full(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, wrapErr("stat", s, key, mapS3Err(err))
	}
	return ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// Get implements [Store].
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, wrapErr("get", s, key, err)
	}
	r, err := s.open(ctx, key, 0, -1, "")
	if err != nil {
		return nil, wrapErr("get", s, key, err)
	}
	return r, nil
}

// GetRange implements [Store].
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, wrapErr("get range", s, key, err)
	}
	if off < 0 {
		return nil, wrapErr("get range", s, key, fmt.Errorf("negative offset %d", off))
	}
	if n == 0 {
		// S3 cannot express an empty range; still report missing objects
		// and offsets past the end.
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if _, err := checkRange(off, n, info.Size); err != nil {
			return nil, wrapErr("get range", s, key, err)
		}
		return emptyReader(), nil
	}
	r, err := s.open(ctx, key, off, n, "")
	if err != nil {
		return nil, wrapErr("get range", s, key, err)
	}
	return r, nil
}

// open issues a GET for bytes [off, off+n) (n < 0: to the end), pinned to
// etag when non-empty, and returns a resuming reader.
func (s *S3) open(ctx context.Context, key string, off, n int64, etag string) (*s3Reader, error) {
	body, size, tag, err := s.request(ctx, key, off, n, etag)
	if err != nil {
		if minio.ToErrorResponse(err).Code != minio.InvalidRange {
			return nil, mapS3Err(err)
		}
		// 416: off is at or past the end (or the object is empty).
		info, serr := s.Stat(ctx, key)
		if serr != nil {
			return nil, errors.Unwrap(serr) // keep a single layer of context
		}
		if _, rerr := checkRange(off, n, info.Size); rerr != nil {
			return nil, rerr
		}
		return &s3Reader{s: s, ctx: ctx, key: key, off: off, end: off}, nil
	}
	end := off + size
	if size < 0 {
		end = -1 // no Content-Length: the body's EOF is the end
	}
	return &s3Reader{s: s, ctx: ctx, key: key, body: body, etag: tag, off: off, end: end}, nil
}

// request performs one ranged GET and returns the body, its length and the
// object's ETag.
func (s *S3) request(ctx context.Context, key string, off, n int64, etag string) (io.ReadCloser, int64, string, error) {
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, 0, "", err
		}
	case off > 0: // n < 0: to the end
		if err := opts.SetRange(off, 0); err != nil {
			return nil, 0, "", err
		}
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, 0, "", err
		}
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, s.full(key), opts)
	if err != nil {
		return nil, 0, "", err
	}
	return body, info.Size, info.ETag, nil
}

// s3Reader reads [off, end) of an object (end < 0: unknown) and resumes
// after broken bodies.
type s3Reader struct {
	s        *S3
	ctx      context.Context
	key      string
	body     io.ReadCloser // nil: must (re)open before reading
	etag     string
	off, end int64
	failures int // consecutive failures without progress
}

func (r *s3Reader) Read(p []byte) (int, error) {
	for {
		if r.end >= 0 && r.off >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.reopen(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.failures = 0
		}
		if err == nil || (err == io.EOF && (r.end < 0 || r.off >= r.end)) {
			return n, err
		}
		// The body broke (or ended early): drop it and resume on the next
		// call, or now if nothing was read.
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			return n, r.ctx.Err()
		}
		r.failures++
		if r.failures > r.s.maxRetries {
			return n, fmt.Errorf("objstore get %q in %s: reading at offset %d: %w", r.key, r.s, r.off, err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (r *s3Reader) reopen() error {
	if err := sleepBackoff(r.ctx, r.failures); err != nil {
		return err
	}
	n := int64(-1)
	if r.end >= 0 {
		n = r.end - r.off
	}
	body, _, _, err := r.s.request(r.ctx, r.key, r.off, n, r.etag)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
			err = fmt.Errorf("object was replaced while being read: %w", err)
		}
		return fmt.Errorf("objstore get %q in %s: resuming at offset %d: %w", r.key, r.s, r.off, mapS3Err(err))
	}
	r.body = body
	return nil
}

func (r *s3Reader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}

// Put implements [Store].
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return wrapErr("put", s, key, err)
	}
	if err := s.put(ctx, key, r, size); err != nil {
		return wrapErr("put", s, key, err)
	}
	return nil
}

func (s *S3) put(ctx context.Context, key string, r io.Reader, size int64) error {
	opts := minio.PutObjectOptions{PartSize: s.partSize, ContentType: "application/octet-stream"}
	buf, rest, err := s.onePart(r, size)
	if err != nil {
		return err
	}
	if rest == nil {
		_, err = s.client.PutObject(ctx, s.bucket, s.full(key), bytes.NewReader(buf), int64(len(buf)), opts)
		return mapS3Err(err)
	}
	// Large or unknown size: multipart upload, part by part. The wrapper
	// hides io.Seeker/io.ReaderAt so minio-go always takes the sequential
	// part-buffering path, and counts bytes to check the declared size.
	r = rest
	cr := &countingReader{r: r}
	_, err = s.client.PutObject(ctx, s.bucket, s.full(key), cr, size, opts)
	if err != nil {
		if cr.err != nil {
			return fmt.Errorf("reading the source after %d bytes: %w", cr.n, cr.err)
		}
		return mapS3Err(err)
	}
	if size >= 0 {
		var probe [1]byte
		if cr.n != size {
			err = fmt.Errorf("reader yielded %d bytes, declared size is %d", cr.n, size)
		} else if m, _ := io.ReadFull(r, probe[:]); m > 0 {
			err = fmt.Errorf("reader yielded more than %d bytes, declared size is %d", size, size)
		}
		if err != nil {
			s.client.RemoveObject(ctx, s.bucket, s.full(key), minio.RemoveObjectOptions{})
			return err
		}
	}
	return nil
}

// onePart reads the whole body when it fits in one part, so that a single
// PUT can be replayed on a retry and the size is checked before anything
// is sent. A body of unknown size is read up to one part: if it ends
// within it, it is sent as one PUT (no multipart round trips). A non-nil
// rest means the body needs a multipart upload: rest yields all of it,
// starting with whatever was read.
func (s *S3) onePart(r io.Reader, size int64) (buf []byte, rest io.Reader, err error) {
	if size >= 0 && uint64(size) <= s.partSize {
		buf, err := readExactly(r, size)
		return buf, nil, err
	}
	if size >= 0 {
		return nil, r, nil
	}
	head, err := io.ReadAll(io.LimitReader(r, int64(s.partSize)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the source after %d bytes: %w", len(head), err)
	}
	if uint64(len(head)) <= s.partSize {
		return head, nil, nil
	}
	return nil, io.MultiReader(bytes.NewReader(head), r), nil
}

// readExactly reads exactly size bytes from r and fails if r yields fewer
// or more.
func readExactly(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, size+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case int64(n) > size:
		return nil, fmt.Errorf("reader yielded more than %d bytes, declared size is %d", size, size)
	case err != nil && err != io.EOF && err != io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("reading the source after %d bytes: %w", n, err)
	case int64(n) < size:
		return nil, fmt.Errorf("reader yielded %d bytes, declared size is %d", n, size)
	}
	return buf[:size], nil
}

// countingReader counts bytes and remembers the source's own error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// Delete implements [Store].
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return wrapErr("delete", s, key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.full(key), minio.RemoveObjectOptions{})
	if err != nil {
		if err = mapS3Err(err); !errors.Is(err, ErrNotExist) {
			return wrapErr("delete", s, key, err)
		}
	}
	return nil
}

// List implements [Store].
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, wrapErr("list", s, prefix, err)
	}
	full := prefix
	if s.root != "" {
		full = s.root + "/" + prefix
	}
	var out []ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if obj.Err != nil {
			return nil, wrapErr("list", s, prefix, mapS3Err(obj.Err))
		}
		key := obj.Key
		if s.root != "" {
			key = strings.TrimPrefix(key, s.root+"/")
		}
		if key == "" || strings.HasSuffix(key, "/") {
			continue // directory markers written by other tools
		}
		out = append(out, ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, wrapErr("list", s, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ensureBucket checks the bucket exists, creating it when create is set.
func (s *S3) ensureBucket(ctx context.Context, create bool, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("objstore: %s: checking bucket: %w", s, err)
	}
	if ok {
		return nil
	}
	if !create {
		return fmt.Errorf("objstore: %s: bucket %q does not exist", s, s.bucket)
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return fmt.Errorf("objstore: %s: creating bucket: %w", s, err)
		}
	}
	return nil
}
