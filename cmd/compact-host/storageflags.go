package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/compacthost/compacthost/storage/objstore"
)

// storageFlags are the flags every command that touches an object store shares. Each flag has an
// environment-variable twin, read when the flag is not given.
type storageFlags struct {
	url        string
	endpoint   string
	accessKey  string
	secretKey  string
	region     string
	disableTLS bool
	create     bool
}

const defaultStorage = "./compact-data"

// storageTwins are the storage flags' environment variables.
var storageTwins = envTwins{
	"storage": "COMPACT_HOST_STORAGE", "endpoint": "COMPACT_HOST_S3_ENDPOINT", "access-key": "COMPACT_HOST_S3_ACCESS_KEY",
	"secret-key": "COMPACT_HOST_S3_SECRET_KEY", "region": "COMPACT_HOST_S3_REGION", "insecure": "COMPACT_HOST_S3_INSECURE",
}

func (f *storageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "storage", defaultStorage,
		"object store: a directory, local:///abs/dir, or s3://bucket[/rootPath]; an s3:// URL's path is Milvus's rootPath unless --root-path names another, which then goes beneath it")
	fs.StringVar(&f.endpoint, "endpoint", "", "S3/MinIO endpoint, host:port or http(s)://host:port")
	fs.StringVar(&f.accessKey, "access-key", "", "S3 access key; default AWS_ACCESS_KEY_ID or MINIO_ROOT_USER")
	fs.StringVar(&f.secretKey, "secret-key", "", "S3 secret key; default AWS_SECRET_ACCESS_KEY or MINIO_ROOT_PASSWORD")
	fs.StringVar(&f.region, "region", "", "S3 region")
	fs.BoolVar(&f.disableTLS, "insecure", false, "plain HTTP to an endpoint given without a scheme")
	storageTwins.describe(fs)
}

func (f *storageFlags) open(ctx context.Context) (objstore.Store, error) {
	s, err := objstore.Open(ctx, f.url, objstore.Options{
		Endpoint: f.endpoint, AccessKey: f.accessKey, SecretKey: f.secretKey, Region: f.region,
		DisableTLS: f.disableTLS, CreateBucket: f.create,
	})
	if err != nil {
		return nil, withCode(exitStorage, fmt.Errorf("open storage %s: %w", f.url, err))
	}
	return s, nil
}

// splitRootPath settles which of --storage and --root-path names Milvus's rootPath, so that a
// user pointing at Milvus's bucket gets Milvus's layout: the path of an s3:// URL is the rootPath
// (s3://milvus/files is bucket milvus, rootPath files, objects at files/insert_log/...) unless
// --root-path (or its variable) names a different one; then the URL's path is a prefix above it
// (s3://b/team --root-path files: team/files/insert_log/...). A command without --root-path
// (inspect) takes keys from the bucket's root. A directory is always the store's root, with the
// rootPath beneath it.
func splitRootPath(fs *pflag.FlagSet) error {
	sf := fs.Lookup("storage")
	if sf == nil {
		return nil
	}
	u, err := url.Parse(sf.Value.String())
	if err != nil || u.Scheme != "s3" {
		return nil // opening the store reports a bad URL
	}
	path := strings.Trim(u.Path, "/")
	if path == "" {
		return nil
	}
	rf := fs.Lookup("root-path")
	if rf != nil && (rf.Changed || os.Getenv("COMPACT_HOST_ROOT_PATH") != "") && strings.Trim(rf.Value.String(), "/") != path {
		return nil
	}
	u.Path, u.RawPath = "", ""
	if err := fs.Set("storage", u.String()); err != nil {
		return err
	}
	if rf != nil {
		return fs.Set("root-path", path)
	}
	return nil
}

// storageCode maps an object-store error to an exit code.
func storageCode(err error) int {
	if errors.Is(err, objstore.ErrNotExist) {
		return exitNotFound
	}
	return exitStorage
}

// noArgs refuses positional arguments with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return withCode(exitUsage, fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}
