// Package objstoretest gives tests fresh object stores: a local one in a
// temporary directory and, when configured, one on a real MinIO (or other
// S3) server.
//
// The S3 server comes from the environment:
//
//	COMPACT_HOST_TEST_S3_ENDPOINT    e.g. http://127.0.0.1:9000
//	COMPACT_HOST_TEST_S3_ACCESS_KEY
//	COMPACT_HOST_TEST_S3_SECRET_KEY
//	COMPACT_HOST_TEST_S3_BUCKET      optional, default "compacthost-test"
//
// scripts/test.sh starts a MinIO server and sets them. When they are unset
// the MinIO store is skipped, except with CI=true, where a missing server
// fails the test.
package objstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/compacthost/compacthost/storage/objstore"
)

// Environment variable names.
const (
	EnvEndpoint  = "COMPACT_HOST_TEST_S3_ENDPOINT"
	EnvAccessKey = "COMPACT_HOST_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "COMPACT_HOST_TEST_S3_SECRET_KEY"
	EnvBucket    = "COMPACT_HOST_TEST_S3_BUCKET"
)

// DefaultBucket is the shared test bucket; each store gets its own prefix.
const DefaultBucket = "compacthost-test"

// Local returns a fresh local store in t.TempDir().
func Local(t testing.TB) *objstore.Local {
	t.Helper()
	s, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// S3Config returns the bucket and Options of the test S3 server. When the
// server is not configured it calls t.Skip, or t.Fatal when CI=true.
func S3Config(t testing.TB) (bucket string, opts objstore.Options) {
	t.Helper()
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		const msg = "MinIO not configured: set " + EnvEndpoint + ", " + EnvAccessKey + " and " +
			EnvSecretKey + " (./scripts/test.sh does this)"
		if os.Getenv("CI") == "true" {
			t.Fatal("MinIO required in CI: " + msg)
		}
		t.Skip(msg)
	}
	bucket = os.Getenv(EnvBucket)
	if bucket == "" {
		bucket = DefaultBucket
	}
	return bucket, objstore.Options{
		Endpoint:     endpoint,
		AccessKey:    os.Getenv(EnvAccessKey),
		SecretKey:    os.Getenv(EnvSecretKey),
		CreateBucket: true,
	}
}

// MinIO returns a store on the test S3 server under a root prefix unique
// to this call; everything under it is deleted when the test ends. It
// skips or fails like S3Config.
func MinIO(t testing.TB) *objstore.S3 {
	t.Helper()
	bucket, opts := S3Config(t)
	return MinIOWith(t, bucket, opts)
}

// MinIOWith is MinIO with caller-adjusted Options (from S3Config), e.g. a
// fault-injecting Transport or a smaller PartSize.
func MinIOWith(t testing.TB, bucket string, opts objstore.Options) *objstore.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := objstore.NewS3(ctx, bucket, UniquePrefix(t), opts)
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	t.Cleanup(func() { Clear(t, s) })
	return s
}

// Stores returns a fresh store per backend, keyed "local" and "minio".
// "minio" is absent when the server is not configured (logged), and a
// missing server fails the test when CI=true. Prefer Run, which reports the
// skipped backend as a skipped subtest.
func Stores(t testing.TB) map[string]objstore.Store {
	t.Helper()
	m := map[string]objstore.Store{"local": Local(t)}
	if os.Getenv(EnvEndpoint) == "" && os.Getenv("CI") != "true" {
		t.Logf("objstoretest: MinIO store skipped: %s is unset", EnvEndpoint)
		return m
	}
	m["minio"] = MinIO(t)
	return m
}

// Run runs fn as the subtests "local" and "minio", each with a fresh store.
func Run(t *testing.T, fn func(t *testing.T, s objstore.Store)) {
	t.Helper()
	t.Run("local", func(t *testing.T) { fn(t, Local(t)) })
	t.Run("minio", func(t *testing.T) { fn(t, MinIO(t)) })
}

// UniquePrefix returns a prefix derived from the test name plus random
// hex, usable as an S3 root.
func UniquePrefix(t testing.TB) string {
	var b [6]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	return "t/" + name + "-" + hex.EncodeToString(b[:])
}

// Clear deletes every object in s.
func Clear(t testing.TB, s objstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Errorf("objstoretest: cleaning %s: %v", s, err)
		return
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			t.Errorf("objstoretest: cleaning %s: %v", s, err)
			return
		}
	}
}

// ReadAll returns the whole object under key, failing the test if it cannot be read.
func ReadAll(t testing.TB, s objstore.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}
