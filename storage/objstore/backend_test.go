package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	r.Read(b)
	return b
}

// oneShot hides io.Seeker / io.ReaderAt / WriterTo so stores see a plain
// stream.
type oneShot struct{ r io.Reader }

func (o oneShot) Read(p []byte) (int, error) { return o.r.Read(p) }

func put(t *testing.T, s objstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func get(t *testing.T, s objstore.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		for _, n := range []int{0, 1, 4096, 1<<20 + 3} {
			key := fmt.Sprintf("files/insert_log/1/2/3/100/%d", n)
			want := payload(n, uint64(n))
			put(t, s, key, want)
			if got := get(t, s, key); !bytes.Equal(got, want) {
				t.Fatalf("%q: got %d bytes, want %d (content differs)", key, len(got), len(want))
			}
			info, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Key != key || info.Size != int64(n) || info.ModTime.IsZero() {
				t.Fatalf("stat %q = %+v, want size %d and a mod time", key, info, n)
			}
		}
		// Overwrite replaces the object; a one-shot stream of known size
		// works too.
		put(t, s, "k", []byte("first version"))
		if err := s.Put(ctx, "k", oneShot{strings.NewReader("second")}, 6); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "k"); string(got) != "second" {
			t.Fatalf("after overwrite got %q, want %q", got, "second")
		}
	})
}

func TestGetRange(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		data := payload(1000, 1)
		put(t, s, "obj", data)
		put(t, s, "empty", nil)
		cases := []struct {
			key     string
			off, n  int64
			want    []byte
			wantErr string
		}{
			{"obj", 0, -1, data, ""},
			{"obj", 0, 0, []byte{}, ""},
			{"obj", 0, 1, data[:1], ""},
			{"obj", 10, 20, data[10:30], ""},
			{"obj", 990, 10, data[990:], ""},
			{"obj", 990, 100, data[990:], ""},
			{"obj", 999, 1, data[999:], ""},
			{"obj", 999, -1, data[999:], ""},
			{"obj", 500, -1, data[500:], ""},
			{"obj", 1000, 5, []byte{}, ""},
			{"obj", 1000, -1, []byte{}, ""},
			{"obj", 1000, 0, []byte{}, ""},
			{"obj", 1001, 1, nil, "offset 1001 is beyond the object size 1000"},
			{"obj", 1001, 0, nil, "offset 1001 is beyond the object size 1000"},
			{"obj", -1, 1, nil, "negative offset -1"},
			{"empty", 0, -1, []byte{}, ""},
			{"empty", 0, 5, []byte{}, ""},
			{"empty", 1, 1, nil, "offset 1 is beyond the object size 0"},
		}
		for _, c := range cases {
			rc, err := s.GetRange(ctx, c.key, c.off, c.n)
			if c.wantErr != "" {
				if err == nil {
					rc.Close()
					t.Errorf("GetRange(%q, %d, %d): no error, want %q", c.key, c.off, c.n, c.wantErr)
				} else if !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), c.key) {
					t.Errorf("GetRange(%q, %d, %d): error %q, want it to contain %q and the key", c.key, c.off, c.n, err, c.wantErr)
				}
				continue
			}
			if err != nil {
				t.Errorf("GetRange(%q, %d, %d): %v", c.key, c.off, c.n, err)
				continue
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, c.want) {
				t.Errorf("GetRange(%q, %d, %d) = %d bytes, err %v; want %d bytes", c.key, c.off, c.n, len(got), err, len(c.want))
			}
		}
	})
}

func TestReaderAt(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		data := payload(5000, 2)
		put(t, s, "a/b", data)
		ra, err := objstore.NewReaderAt(ctx, s, "a/b")
		if err != nil {
			t.Fatal(err)
		}
		defer ra.Close()
		if ra.Size() != 5000 {
			t.Fatalf("Size() = %d, want 5000", ra.Size())
		}
		cases := []struct {
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{0, 100, 100, false},
			{4900, 100, 100, false},
			{4950, 100, 50, true},
			{4999, 1, 1, false},
			{5000, 1, 0, true},
			{6000, 10, 0, true},
			{0, 5000, 5000, false},
			{0, 0, 0, false},
		}
		for _, c := range cases {
			p := make([]byte, c.n)
			n, err := ra.ReadAt(p, c.off)
			if n != c.wantN || (err == io.EOF) != c.wantEOF || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt(len %d, off %d) = %d, %v; want %d, EOF=%v", c.n, c.off, n, err, c.wantN, c.wantEOF)
				continue
			}
			if n > 0 && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
				t.Errorf("ReadAt(len %d, off %d): wrong bytes", c.n, c.off)
			}
		}
		if _, err := ra.ReadAt(make([]byte, 1), -1); err == nil || !strings.Contains(err.Error(), "negative offset") {
			t.Errorf("ReadAt at -1: err %v, want a negative-offset error", err)
		}
		// A SectionReader over it reads the whole object.
		got, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("section read: %d bytes, %v", len(got), err)
		}
	})
}

// TestLargeStreamingPut exercises multipart uploads: an unknown-size
// stream and a known-size stream, both larger than the 16 MiB part size.
func TestLargeStreamingPut(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		data := payload(objstore.DefaultPartSize+1<<20+123, 3)
		for _, size := range []int64{-1, int64(len(data))} {
			key := fmt.Sprintf("big/%d", size)
			if err := s.Put(ctx, key, oneShot{bytes.NewReader(data)}, size); err != nil {
				t.Fatalf("put size %d: %v", size, err)
			}
			if got := get(t, s, key); !bytes.Equal(got, data) {
				t.Fatalf("size %d: read back %d bytes, want %d identical bytes", size, len(got), len(data))
			}
		}
		// A known-size multipart stream that ends early fails and stores
		// nothing.
		err := s.Put(ctx, "big/short", oneShot{bytes.NewReader(data[:len(data)-10])}, int64(len(data)))
		if err == nil {
			t.Fatal("put of a stream shorter than its declared size succeeded")
		}
		if _, err := s.Stat(ctx, "big/short"); !errors.Is(err, objstore.ErrNotExist) {
			t.Fatalf("after failed put, stat: %v, want ErrNotExist", err)
		}
	})
}

func TestPutSizeMismatch(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		put(t, s, "keep", []byte("old"))
		for _, c := range []struct {
			data string
			size int64
			want string
		}{
			{"12345", 10, "reader yielded 5 bytes, declared size is 10"},
			{"123456789012345", 10, "declared size is 10"},
		} {
			for _, key := range []string{"new", "keep"} {
				err := s.Put(ctx, key, oneShot{strings.NewReader(c.data)}, c.size)
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), key) {
					t.Errorf("put %q of %d bytes declared %d: err %v, want %q", key, len(c.data), c.size, err, c.want)
				}
			}
		}
		if _, err := s.Stat(ctx, "new"); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("failed put created the object: stat err %v", err)
		}
		if got := get(t, s, "keep"); string(got) != "old" {
			t.Errorf("failed put changed the old object to %q", got)
		}
		// A reader error aborts the put and names the key.
		err := s.Put(ctx, "new", io.MultiReader(strings.NewReader("abc"), errReader{}), -1)
		if err == nil || !strings.Contains(err.Error(), "injected read failure") {
			t.Errorf("put with failing reader: err %v, want the reader's error", err)
		}
		if _, err := s.Stat(ctx, "new"); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("failed put created the object: stat err %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("injected read failure") }

func TestList(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		keys := []string{"z", "a/b/2", "a.txt", "a/bc/3", "a/b/1", "a/b/sub/4"}
		for i, k := range keys {
			put(t, s, k, payload(i, uint64(i)))
		}
		cases := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a.txt", "a/b/1", "a/b/2", "a/b/sub/4", "a/bc/3", "z"}},
			{"a", []string{"a.txt", "a/b/1", "a/b/2", "a/b/sub/4", "a/bc/3"}},
			{"a/", []string{"a/b/1", "a/b/2", "a/b/sub/4", "a/bc/3"}},
			{"a/b", []string{"a/b/1", "a/b/2", "a/b/sub/4", "a/bc/3"}},
			{"a/b/", []string{"a/b/1", "a/b/2", "a/b/sub/4"}},
			{"a/b/sub/4", []string{"a/b/sub/4"}},
			{"a/b/sub/4/", nil},
			{"nope/", nil},
			{"zz", nil},
		}
		for _, c := range cases {
			objs, err := s.List(ctx, c.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", c.prefix, err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.Key)
				if want := int64(indexOf(keys, o.Key)); o.Size != want {
					t.Errorf("List(%q): %q has size %d, want %d", c.prefix, o.Key, o.Size, want)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("List(%q) = %v, want %v", c.prefix, got, c.want)
			}
		}
		if _, err := s.List(ctx, "../x"); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("List(../x): err %v, want ErrInvalidKey", err)
		}
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestMissingAndDelete(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		const key = "files/delta_log/1/2/3/44"
		checkMissing := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, objstore.ErrNotExist) {
				t.Errorf("%s of missing key: err %v, want ErrNotExist", op, err)
				return
			}
			if msg := err.Error(); !strings.Contains(msg, key) || !strings.Contains(msg, s.String()) {
				t.Errorf("%s error %q does not name the key and the store", op, msg)
			}
		}
		_, err := s.Get(ctx, key)
		checkMissing("get", err)
		_, err = s.GetRange(ctx, key, 0, 10)
		checkMissing("get range", err)
		_, err = s.GetRange(ctx, key, 0, 0)
		checkMissing("empty get range", err)
		_, err = s.Stat(ctx, key)
		checkMissing("stat", err)
		_, err = objstore.NewReaderAt(ctx, s, key)
		checkMissing("NewReaderAt", err)
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("delete of missing key: %v", err)
		}

		put(t, s, key, []byte("x"))
		put(t, s, "files/delta_log/1/2/3/45", []byte("y"))
		// A "directory" (a prefix of other keys) is not an object.
		_, err = s.Stat(ctx, "files/delta_log")
		if !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("stat of a prefix: err %v, want ErrNotExist", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(ctx, key)
		checkMissing("get after delete", err)
		if got := get(t, s, "files/delta_log/1/2/3/45"); string(got) != "y" {
			t.Errorf("sibling changed to %q", got)
		}
		if err := s.Delete(ctx, "files/delta_log/1/2/3/45"); err != nil {
			t.Fatal(err)
		}
		if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
			t.Errorf("after deleting everything List = %v, %v; want empty", objs, err)
		}
		// The key can be written again after its parents were pruned.
		put(t, s, key, []byte("z"))
	})
}

func TestInvalidKeys(t *testing.T) {
	bad := []string{"", "/abs", "/", "a/", "a//b", "..", "../x", "a/../../x", "a/..", ".", "./a", "a/./b", `a\b`, "a\x00b"}
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		for _, key := range bad {
			errs := map[string]error{
				"put":    s.Put(ctx, key, strings.NewReader("x"), 1),
				"delete": s.Delete(ctx, key),
			}
			_, errs["get"] = s.Get(ctx, key)
			_, errs["get range"] = s.GetRange(ctx, key, 0, 1)
			_, errs["stat"] = s.Stat(ctx, key)
			for op, err := range errs {
				if !errors.Is(err, objstore.ErrInvalidKey) {
					t.Errorf("%s %q: err %v, want ErrInvalidKey", op, key, err)
				}
			}
		}
		if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
			t.Errorf("invalid keys left objects: %v, %v", objs, err)
		}
	})
}

func TestConcurrentPuts(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, s objstore.Store) {
		ctx := context.Background()
		const workers, each = 6, 8
		var wg sync.WaitGroup
		errs := make(chan error, workers*each*2)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					own := payload(100+i, uint64(w*100+i))
					if err := s.Put(ctx, fmt.Sprintf("c/%d/%d", w, i), bytes.NewReader(own), int64(len(own))); err != nil {
						errs <- err
					}
					// Everyone also races on one shared key and on a
					// directory being pruned by deletes.
					shared := bytes.Repeat([]byte{byte(w)}, 1000)
					if err := s.Put(ctx, "shared/obj", bytes.NewReader(shared), -1); err != nil {
						errs <- err
					}
					if err := s.Put(ctx, "churn/x", strings.NewReader("x"), 1); err != nil {
						errs <- err
					}
					if err := s.Delete(ctx, "churn/x"); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for w := range workers {
			for i := range each {
				if got := get(t, s, fmt.Sprintf("c/%d/%d", w, i)); !bytes.Equal(got, payload(100+i, uint64(w*100+i))) {
					t.Errorf("c/%d/%d: wrong content", w, i)
				}
			}
		}
		got := get(t, s, "shared/obj")
		if len(got) != 1000 || !bytes.Equal(got, bytes.Repeat(got[:1], 1000)) {
			t.Errorf("shared object is torn: %d bytes", len(got))
		}
	})
}
