package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// expectExist checks that err is a Create collision naming key and store,
// and that the object under key still holds want.
func expectExist(t *testing.T, s objstore.Store, key string, err error, want []byte) {
	t.Helper()
	if !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("Create on existing %q: error %v, want ErrExist", key, err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", key)) || !strings.Contains(msg, s.String()) {
		t.Fatalf("error %q does not name key %q and store %s", msg, key, s)
	}
	if got := get(t, s, key); !bytes.Equal(got, want) {
		t.Fatalf("%q changed: %d bytes, want the original %d", key, len(got), len(want))
	}
}

// TestCreate: Create stores a new object, refuses an existing one (ErrExist,
// key named, bytes untouched), also for a stream of unknown size.
func TestCreate(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		first := payload(4096, 1)
		if err := s.Create(ctx, "a/b/new", bytes.NewReader(first), int64(len(first))); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "a/b/new"); !bytes.Equal(got, first) {
			t.Fatalf("created object: got %d bytes, want %d", len(got), len(first))
		}
		second := payload(100, 2)
		err := s.Create(ctx, "a/b/new", bytes.NewReader(second), int64(len(second)))
		expectExist(t, s, "a/b/new", err, first)
		err = s.Create(ctx, "a/b/new", oneShot{bytes.NewReader(second)}, -1)
		expectExist(t, s, "a/b/new", err, first)
		// An empty object is an object too.
		if err := s.Create(ctx, "empty", bytes.NewReader(nil), 0); err != nil {
			t.Fatal(err)
		}
		err = s.Create(ctx, "empty", bytes.NewReader(second), int64(len(second)))
		expectExist(t, s, "empty", err, []byte{})
		// A failed Create leaves nothing behind.
		err = s.Create(ctx, "short", bytes.NewReader(second), 200)
		if err == nil || errors.Is(err, objstore.ErrExist) || !strings.Contains(err.Error(), "declared size is 200") {
			t.Fatalf("Create with a short reader: %v, want a size error", err)
		}
		if _, err := s.Stat(ctx, "short"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("failed Create left an object: stat = %v", err)
		}
		// The key is free again after a Delete.
		if err := s.Delete(ctx, "a/b/new"); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, "a/b/new", bytes.NewReader(second), int64(len(second))); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
	})
}

// TestCreateRace: of N concurrent Creates of one key, exactly one wins;
// the others fail with ErrExist and the object holds the winner's bytes.
func TestCreateRace(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				b := payload(64<<10, uint64(i))
				errs[i] = s.Create(context.Background(), "race/obj", bytes.NewReader(b), int64(len(b)))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("Creates %d and %d both succeeded", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, objstore.ErrExist):
				t.Fatalf("Create %d: %v, want success or ErrExist", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no Create succeeded")
		}
		if got := get(t, s, "race/obj"); !bytes.Equal(got, payload(64<<10, uint64(winner))) {
			t.Fatalf("object does not hold the bytes of the winning Create %d", winner)
		}
	})
}

// TestCreateMultipart: a Create larger than one part (a multipart upload
// on S3) is conditional too, with a known and an unknown size.
func TestCreateMultipart(t *testing.T) {
	const partSize = 5 << 20
	stores := map[string]func(t *testing.T) objstore.Store{
		"local": func(t *testing.T) objstore.Store { return objstoretest.Local(t) },
		"minio": func(t *testing.T) objstore.Store {
			bucket, opts := objstoretest.S3Config(t)
			opts.PartSize = partSize
			return objstoretest.MinIOWith(t, bucket, opts)
		},
	}
	for _, name := range []string{"local", "minio"} {
		t.Run(name, func(t *testing.T) {
			s := stores[name](t)
			ctx := context.Background()
			big := payload(2*partSize+123, 5)
			if err := s.Create(ctx, "big", bytes.NewReader(big), int64(len(big))); err != nil {
				t.Fatal(err)
			}
			other := payload(2*partSize+7, 6)
			err := s.Create(ctx, "big", bytes.NewReader(other), int64(len(other)))
			expectExist(t, s, "big", err, big)
			err = s.Create(ctx, "big", oneShot{bytes.NewReader(other)}, -1)
			expectExist(t, s, "big", err, big)
			// Unknown size, new key: multipart and stored whole.
			if err := s.Create(ctx, "big2", oneShot{bytes.NewReader(other)}, -1); err != nil {
				t.Fatal(err)
			}
			if got := get(t, s, "big2"); !bytes.Equal(got, other) {
				t.Fatalf("big2: got %d bytes, want %d", len(got), len(other))
			}
			// A size mismatch fails and leaves nothing.
			err = s.Create(ctx, "big3", bytes.NewReader(other), int64(len(other))-1)
			if err == nil || !strings.Contains(err.Error(), "declared size") {
				t.Fatalf("Create with a long reader: %v, want a size error", err)
			}
			if _, err := s.Stat(ctx, "big3"); !errors.Is(err, objstore.ErrNotExist) {
				t.Fatalf("failed Create left an object: stat = %v", err)
			}
		})
	}
}
