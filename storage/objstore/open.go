package objstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultPartSize is the multipart part size used when Options.PartSize is
// zero. Objects of known size up to it are sent in a single PUT.
const DefaultPartSize = 16 << 20

// DefaultMaxRetries is the retry budget used when Options.MaxRetries is zero.
const DefaultMaxRetries = 10

// Options configure the S3 backend; the local backend ignores them.
// Zero values mean "use the URL's query parameters, then the environment,
// then the default", in that order.
type Options struct {
	// Endpoint is "host:port" or "http(s)://host:port". A scheme decides
	// TLS; without one TLS is on unless DisableTLS is set. URL query
	// parameter "endpoint"; environment AWS_ENDPOINT_URL_S3, then
	// AWS_ENDPOINT_URL; default "s3.amazonaws.com".
	Endpoint string
	// DisableTLS selects plain HTTP for an Endpoint without a scheme. URL
	// query parameter "tls=false".
	DisableTLS bool

	// AccessKey and SecretKey (and the optional SessionToken) are static
	// credentials. When AccessKey is empty the environment is used:
	// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then
	// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or MINIO_ACCESS_KEY /
	// MINIO_SECRET_KEY); with none set, requests are anonymous.
	AccessKey, SecretKey, SessionToken string

	// Region is the bucket region. URL query parameter "region";
	// environment AWS_REGION, then AWS_DEFAULT_REGION; default: discovered.
	Region string

	// PartSize is the multipart part size in bytes (minimum 5 MiB); default
	// DefaultPartSize. Each in-flight upload holds one part in memory.
	PartSize uint64

	// MaxRetries bounds the attempts per request and the consecutive
	// resume attempts of a broken GET body; default DefaultMaxRetries.
	MaxRetries int

	// CreateBucket creates the bucket when it does not exist (for tests and
	// demos). Without it, Open fails on a missing bucket.
	CreateBucket bool

	// Transport replaces the HTTP transport (for example to inject faults
	// in tests). Default: minio-go's default transport.
	Transport http.RoundTripper
}

// Open opens the store named by rawURL:
//
//   - "local:///abs/dir", "file:///abs/dir" or a bare path ("./data",
//     "/data"): a [Local] store on that directory, created if missing;
//   - "s3://bucket" or "s3://bucket/root/prefix": an [S3] store; query
//     parameters endpoint, region and tls (true/false) fill the matching
//     Options fields left empty, e.g.
//     "s3://a-bucket/files?endpoint=127.0.0.1:9000&tls=false".
//
// Opening an S3 store contacts the service once to check the bucket.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		if rawURL == "" {
			return nil, fmt.Errorf("objstore: empty store URL")
		}
		return NewLocal(rawURL)
	}
	switch scheme {
	case "local", "file":
		if rest == "" {
			return nil, fmt.Errorf("objstore: %q names no directory", rawURL)
		}
		return NewLocal(rest)
	case "s3":
		return openS3(ctx, rawURL, opts)
	default:
		return nil, fmt.Errorf("objstore: %q: unknown scheme %q (want local, file or s3)", rawURL, scheme)
	}
}

func openS3(ctx context.Context, rawURL string, opts Options) (*S3, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("objstore: bad store URL %q: %w", rawURL, err)
	}
	bucket := u.Host
	if bucket == "" {
		return nil, fmt.Errorf("objstore: %q names no bucket", rawURL)
	}
	root := strings.Trim(u.Path, "/")
	q := u.Query()
	if opts.Endpoint == "" {
		opts.Endpoint = firstNonEmpty(q.Get("endpoint"), os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"), "s3.amazonaws.com")
	}
	if v := q.Get("tls"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("objstore: %q: bad tls value %q", rawURL, v)
		}
		opts.DisableTLS = opts.DisableTLS || !on
	}
	if opts.Region == "" {
		opts.Region = firstNonEmpty(q.Get("region"), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	}
	return NewS3(ctx, bucket, root, opts)
}

// NewS3 opens bucket on opts.Endpoint with keys stored under root (no
// leading or trailing "/"; "" for the bucket root). Options documents the
// defaults; the environment fills only credentials here.
func NewS3(ctx context.Context, bucket, root string, opts Options) (*S3, error) {
	root = strings.Trim(root, "/")
	if root != "" {
		if err := validatePath(root); err != nil {
			return nil, fmt.Errorf("objstore: s3://%s: bad root prefix: %w", bucket, err)
		}
	}
	host, secure := opts.Endpoint, !opts.DisableTLS
	if scheme, rest, ok := strings.Cut(host, "://"); ok {
		switch scheme {
		case "http":
			secure = false
		case "https":
			secure = true
		default:
			return nil, fmt.Errorf("objstore: endpoint %q: unknown scheme %q", opts.Endpoint, scheme)
		}
		host = strings.TrimSuffix(rest, "/")
	}
	if host == "" {
		return nil, fmt.Errorf("objstore: s3://%s: no endpoint", bucket)
	}
	var creds *credentials.Credentials
	if opts.AccessKey != "" {
		creds = credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, opts.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}})
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < 5<<20 {
		return nil, fmt.Errorf("objstore: s3://%s: part size %d is below the S3 minimum of 5 MiB", bucket, opts.PartSize)
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	transport := opts.Transport
	if transport == nil {
		t, err := minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("objstore: s3://%s: %w", bucket, err)
		}
		transport = t
	}
	client, err := minio.New(host, &minio.Options{
		Creds:      creds,
		Secure:     secure,
		Region:     opts.Region,
		Transport:  transport,
		MaxRetries: opts.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: s3://%s at %s: %w", bucket, host, err)
	}
	s := &S3{
		client:     client,
		core:       minio.Core{Client: client},
		bucket:     bucket,
		root:       root,
		partSize:   opts.PartSize,
		maxRetries: opts.MaxRetries,
	}
	if err := s.ensureBucket(ctx, opts.CreateBucket, opts.Region); err != nil {
		return nil, fmt.Errorf("%w (endpoint %s)", err, host)
	}
	return s, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// sleepBackoff waits before retry attempt n (0-based): 100 ms doubling per
// attempt, capped at 2 s, with ±50 % jitter. It returns early with the
// context's error.
func sleepBackoff(ctx context.Context, attempt int) error {
	if attempt <= 0 {
		return ctx.Err()
	}
	d := 100 * time.Millisecond << min(attempt-1, 5)
	d = min(d, 2*time.Second)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
