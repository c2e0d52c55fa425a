package main

import (
	"context"
	"errors"
	"fmt"
	"os"

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

func (f *storageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "storage", envOr("COMPACT_HOST_STORAGE", defaultStorage),
		"object store: a directory, local:///abs/dir, or s3://bucket/root [$COMPACT_HOST_STORAGE]")
	fs.StringVar(&f.endpoint, "endpoint", os.Getenv("COMPACT_HOST_S3_ENDPOINT"),
		"S3/MinIO endpoint, host:port or http(s)://host:port [$COMPACT_HOST_S3_ENDPOINT]")
	fs.StringVar(&f.accessKey, "access-key", os.Getenv("COMPACT_HOST_S3_ACCESS_KEY"),
		"S3 access key; default AWS_ACCESS_KEY_ID or MINIO_ROOT_USER [$COMPACT_HOST_S3_ACCESS_KEY]")
	fs.StringVar(&f.secretKey, "secret-key", os.Getenv("COMPACT_HOST_S3_SECRET_KEY"),
		"S3 secret key; default AWS_SECRET_ACCESS_KEY or MINIO_ROOT_PASSWORD [$COMPACT_HOST_S3_SECRET_KEY]")
	fs.StringVar(&f.region, "region", os.Getenv("COMPACT_HOST_S3_REGION"), "S3 region [$COMPACT_HOST_S3_REGION]")
	fs.BoolVar(&f.disableTLS, "insecure", os.Getenv("COMPACT_HOST_S3_INSECURE") == "true",
		"plain HTTP to an endpoint given without a scheme [$COMPACT_HOST_S3_INSECURE]")
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

// storageCode maps an object-store error to an exit code.
func storageCode(err error) int {
	if errors.Is(err, objstore.ErrNotExist) {
		return exitNotFound
	}
	return exitStorage
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// noArgs refuses positional arguments with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return withCode(exitUsage, fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}
