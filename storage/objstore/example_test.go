package objstore_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/compacthost/compacthost/storage/objstore"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "objstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// "s3://bucket/root?endpoint=host:9000&tls=false" would open MinIO.
	s, err := objstore.Open(ctx, "local://"+dir, objstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.Put(ctx, "files/delta_log/1/2/3/10", strings.NewReader("hello"), 5)
	objs, _ := s.List(ctx, "files/delta_log/")
	for _, o := range objs {
		fmt.Println(o.Key, o.Size)
	}
	rc, _ := s.GetRange(ctx, "files/delta_log/1/2/3/10", 1, 3)
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(b))
	// Output:
	// files/delta_log/1/2/3/10 5
	// ell
}

func ExampleNewReaderAt() {
	dir, _ := os.MkdirTemp("", "objstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, _ := objstore.NewLocal(dir)
	defer s.Close()
	_ = s.Put(ctx, "obj", strings.NewReader("0123456789"), -1)

	ra, err := objstore.NewReaderAt(ctx, s, "obj")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ra.Close()
	p := make([]byte, 4)
	n, err := ra.ReadAt(p, 8)
	fmt.Println(ra.Size(), n, string(p[:n]), err)

	_, err = objstore.NewReaderAt(ctx, s, "missing")
	fmt.Println(err != nil && strings.Contains(err.Error(), objstore.ErrNotExist.Error()))
	// Output:
	// 10 2 89 EOF
	// true
}
