package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
)

// createTokenMeta is the user metadata key under which Create stores a
// token unique to the call. A retried request, or one whose response was
// lost, cannot tell from the status alone whether the object it finds is
// its own; the token tells.
const createTokenMeta = "Compacthost-Create"

// settleTimeout bounds the Stat that settles a Create with an unclear
// outcome, also when the caller's context is done.
const settleTimeout = 15 * time.Second

// maxParts is the S3 limit on the parts of one multipart upload.
const maxParts = 10000

// Create implements [Store]. Every request that can store the object
// carries If-None-Match: *: the single PUT of a small object, and the
// CompleteMultipartUpload of a large one (the parts are invisible until
// then). The service refuses it with 412 when the key exists.
func (s *S3) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return wrapErr("create", s, key, err)
	}
	if err := ctx.Err(); err != nil {
		return wrapErr("create", s, key, err) // nothing sent: nothing to settle
	}
	var t [16]byte
	rand.Read(t[:])
	token := hex.EncodeToString(t[:])
	return wrapErr("create", s, key, s.create(ctx, key, r, size, token))
}

func (s *S3) create(ctx context.Context, key string, r io.Reader, size int64, token string) error {
	meta := map[string]string{createTokenMeta: token}
	buf, rest, err := s.onePart(r, size)
	if err != nil {
		return err // nothing was sent
	}
	if rest == nil {
		opts := minio.PutObjectOptions{ContentType: "application/octet-stream", UserMetadata: meta}
		opts.SetMatchETagExcept("*")
		_, err := s.client.PutObject(ctx, s.bucket, s.full(key), bytes.NewReader(buf), int64(len(buf)), opts)
		if err != nil {
			return s.settle(ctx, key, token, err)
		}
		return nil
	}
	return s.createMultipart(ctx, key, rest, size, meta)
}

// createMultipart uploads r in parts and completes the upload with
// If-None-Match: *. minio-go's PutObject cannot be used: it drops custom
// headers from the CompleteMultipartUpload request, which would leave the
// commit unconditional. Each part is buffered so minio-go can retry it.
func (s *S3) createMultipart(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	full := s.full(key)
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, full,
		minio.PutObjectOptions{ContentType: "application/octet-stream", UserMetadata: meta})
	if err != nil {
		return mapS3Err(err) // an upload that never started stores nothing
	}
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		defer cancel()
		s.core.AbortMultipartUpload(actx, s.bucket, full, id)
	}
	parts, err := s.uploadParts(ctx, full, id, r, size)
	if err != nil {
		abort()
		return err
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, full, id, parts, opts); err != nil {
		abort() // a refused completion leaves the upload and its parts behind
		return s.settle(ctx, key, meta[createTokenMeta], err)
	}
	return nil
}

// uploadParts sends r as parts of upload id and checks the declared size.
func (s *S3) uploadParts(ctx context.Context, full, id string, r io.Reader, size int64) ([]minio.CompletePart, error) {
	var parts []minio.CompletePart
	var total int64
	buf := make([]byte, s.partSize)
	for n := 1; ; n++ {
		m, err := io.ReadFull(r, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("reading the source after %d bytes: %w", total+int64(m), err)
		}
		if m == 0 {
			break
		}
		total += int64(m)
		if size >= 0 && total > size {
			return nil, fmt.Errorf("reader yielded more than %d bytes, declared size is %d", size, size)
		}
		if n > maxParts {
			return nil, fmt.Errorf("object exceeds %d parts of %d bytes", maxParts, s.partSize)
		}
		p, err := s.core.PutObjectPart(ctx, s.bucket, full, id, n, bytes.NewReader(buf[:m]), int64(m), minio.PutObjectPartOptions{})
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", n, mapS3Err(err))
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		if m < len(buf) {
			break
		}
	}
	if size >= 0 && total != size {
		return nil, fmt.Errorf("reader yielded %d bytes, declared size is %d", total, size)
	}
	return parts, nil
}

// settle turns the error of a request that may have stored the object
// into Create's result. A refusal (4xx) stored nothing. Otherwise (412,
// an upload that vanished because an earlier attempt completed it, a
// network error, 5xx, a cancelled context) the key is looked at: this
// call's token means an attempt of this Create stored the object, so it
// succeeded; another object means the key was taken; no object means
// nothing was stored. When the key cannot be looked at either, the
// outcome is unknown.
func (s *S3) settle(ctx context.Context, key, token string, err error) error {
	resp := minio.ToErrorResponse(err)
	taken := resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed"
	if !taken && resp.Code != "NoSuchUpload" && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return mapS3Err(err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	info, serr := s.client.StatObject(sctx, s.bucket, s.full(key), minio.StatObjectOptions{})
	switch {
	case serr == nil && info.Metadata.Get("X-Amz-Meta-"+createTokenMeta) == token:
		return nil
	case serr == nil || taken:
		return ErrExist
	case errors.Is(mapS3Err(serr), ErrNotExist):
		return mapS3Err(err)
	default:
		return fmt.Errorf("%w: %v (looking at the key failed too: %v)", ErrUnknownOutcome, err, serr)
	}
}
