package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/minio/minio-go/v7"
)

// faultTransport injects network failures: it fails the next failPuts
// single-request PUTs before sending them, cuts the next cutGets GET
// response bodies after cutAfter bytes, loses the responses of the next
// loseCommits requests that store an object (a single PUT or a
// CompleteMultipartUpload: sent and applied, then a connection reset), and
// fails every request while down is set (set by a lost response when
// downAfterLoss is).
type faultTransport struct {
	base          http.RoundTripper
	mu            sync.Mutex
	failPuts      int
	cutGets       int
	cutAfter      int64
	loseCommits   int
	down          bool
	downAfterLoss bool
	gets          int // GET requests seen
	uploads       int // multipart uploads started
}

var errReset = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	isObjectPut := req.Method == http.MethodPut && req.URL.RawQuery == ""
	failPut := isObjectPut && f.failPuts > 0
	if failPut {
		f.failPuts--
	}
	isCommit := isObjectPut || (req.Method == http.MethodPost && req.URL.Query().Has("uploadId"))
	lose := isCommit && !failPut && f.loseCommits > 0
	if lose {
		f.loseCommits--
	}
	isGet := req.Method == http.MethodGet && req.URL.RawQuery == ""
	cut := isGet && f.cutGets > 0
	if isGet {
		f.gets++
	}
	if req.Method == http.MethodPost && req.URL.Query().Has("uploads") {
		f.uploads++
	}
	if cut {
		f.cutGets--
	}
	f.mu.Unlock()
	if failPut {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	resp, err := f.base.RoundTrip(req)
	if err == nil && lose {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.mu.Lock()
		f.down = f.downAfterLoss
		f.mu.Unlock()
		return nil, errReset
	}
	if err != nil || !cut || resp.StatusCode/100 != 2 {
		return resp, err
	}
	resp.Body = &cutBody{rc: resp.Body, left: f.cutAfter}
	return resp, nil
}

type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errReset
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

func faultyMinIO(t *testing.T) (*objstore.S3, *faultTransport) {
	return faultyMinIOWith(t, func(*objstore.Options) {})
}

// faultyMinIOWith is faultyMinIO with adjusted Options.
func faultyMinIOWith(t *testing.T, mod func(*objstore.Options)) (*objstore.S3, *faultTransport) {
	bucket, opts := objstoretest.S3Config(t)
	mod(&opts)
	base, err := minio.DefaultTransport(strings.HasPrefix(opts.Endpoint, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	ft := &faultTransport{base: base}
	opts.Transport = ft
	return objstoretest.MinIOWith(t, bucket, opts), ft
}

// TestS3ResumeBrokenBody: a GET body that breaks mid-stream is resumed
// from the current offset (minio-go alone would surface the error).
func TestS3ResumeBrokenBody(t *testing.T) {
	s, ft := faultyMinIO(t)
	ctx := context.Background()
	data := payload(100_000, 9)
	put(t, s, "obj", data)

	ft.mu.Lock()
	ft.cutGets, ft.cutAfter, ft.gets = 3, 7000, 0
	ft.mu.Unlock()
	if got := get(t, s, "obj"); !bytes.Equal(got, data) {
		t.Fatalf("resumed get returned %d bytes, want %d identical", len(got), len(data))
	}
	if ft.gets != 4 {
		t.Errorf("GET requests = %d, want 4 (1 + 3 resumes)", ft.gets)
	}

	ft.mu.Lock()
	ft.cutGets, ft.cutAfter = 2, 1000
	ft.mu.Unlock()
	rc, err := s.GetRange(ctx, "obj", 5000, 50_000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[5000:55_000]) {
		t.Fatalf("resumed range read: %d bytes, %v", len(got), err)
	}
}

// TestS3ResumeDetectsReplacedObject: a resume never mixes bytes of two
// versions of an object.
func TestS3ResumeDetectsReplacedObject(t *testing.T) {
	s, ft := faultyMinIO(t)
	ctx := context.Background()
	put(t, s, "obj", payload(10_000, 1))
	ft.mu.Lock()
	ft.cutGets, ft.cutAfter = 1, 1000
	ft.mu.Unlock()
	rc, err := s.Get(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	put(t, s, "obj", payload(10_000, 2))
	_, err = io.ReadAll(rc)
	if err == nil || !strings.Contains(err.Error(), "replaced while being read") || !strings.Contains(err.Error(), `"obj"`) {
		t.Fatalf("read across a replacement: err %v, want a 'replaced' error naming the key", err)
	}
}

// TestS3RetriesOneShotPut: a small put from a non-seekable stream survives
// transient network errors because it is buffered and replayed.
func TestS3RetriesOneShotPut(t *testing.T) {
	s, ft := faultyMinIO(t)
	ft.mu.Lock()
	ft.failPuts = 2
	ft.mu.Unlock()
	data := payload(3000, 4)
	if err := s.Put(context.Background(), "p", oneShot{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("put with 2 injected failures: %v", err)
	}
	if ft.failPuts != 0 {
		t.Fatalf("fault injection not exercised: %d failures left", ft.failPuts)
	}
	if got := get(t, s, "p"); !bytes.Equal(got, data) {
		t.Fatal("content differs after retried put")
	}
	// The same holds for a small stream of unknown size, which is also
	// sent as a single PUT rather than a multipart upload.
	ft.mu.Lock()
	ft.failPuts, ft.uploads = 2, 0
	ft.mu.Unlock()
	if err := s.Put(context.Background(), "q", oneShot{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("unknown-size put with 2 injected failures: %v", err)
	}
	if ft.failPuts != 0 || ft.uploads != 0 {
		t.Fatalf("failures left %d, multipart uploads %d; want 0 and 0", ft.failPuts, ft.uploads)
	}
	if got := get(t, s, "q"); !bytes.Equal(got, data) {
		t.Fatal("content differs after retried unknown-size put")
	}
}

func TestS3OpenURL(t *testing.T) {
	bucket, opts := objstoretest.S3Config(t)
	ctx := context.Background()
	t.Setenv("AWS_ACCESS_KEY_ID", opts.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", opts.SecretKey)
	host := strings.TrimPrefix(opts.Endpoint, "http://")
	root := objstoretest.UniquePrefix(t)
	url := "s3://" + bucket + "/" + root + "/?endpoint=" + host + "&tls=false"
	s, err := objstore.Open(ctx, url, objstore.Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { objstoretest.Clear(t, s) })
	if want := "s3://" + bucket + "/" + root; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
	put(t, s, "k", []byte("v"))
	if got := get(t, s, "k"); string(got) != "v" {
		t.Errorf("got %q", got)
	}

	// Credentials from the MinIO variables work too.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("MINIO_ROOT_USER", opts.AccessKey)
	t.Setenv("MINIO_ROOT_PASSWORD", opts.SecretKey)
	s2, err := objstore.Open(ctx, url, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, s2, "k"); string(got) != "v" {
		t.Errorf("via MINIO_ROOT_* got %q", got)
	}

	// A missing bucket is reported unless CreateBucket is set.
	_, err = objstore.Open(ctx, "s3://no-such-bucket-compacthost/x?endpoint="+host+"&tls=false", objstore.Options{})
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket-compacthost" does not exist`) {
		t.Errorf("missing bucket: err %v", err)
	}
	// Wrong credentials fail with the service's error, not ErrNotExist.
	bad := opts
	bad.SecretKey = "wrong-secret"
	bad.CreateBucket = false
	_, err = objstore.NewS3(ctx, bucket, "x", bad)
	if err == nil || errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("bad credentials: err %v", err)
	}
}
