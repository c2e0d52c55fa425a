package objstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

func TestLocalSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := objstoretest.Local(t)
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rc, err := s.Get(ctx, "link/secret"); err == nil {
		rc.Close()
		t.Fatal("read a file outside the root through a symlink")
	}
	if err := s.Put(ctx, "link/planted", strings.NewReader("x"), 1); err == nil {
		t.Fatal("wrote through a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file planted outside the root: %v", err)
	}
	if objs, err := s.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("List shows %v, %v; want nothing (symlinks are not objects)", objs, err)
	}
	// A symlink to an object inside the root is not an object either, for
	// every operation alike.
	put(t, s, "real", []byte("x"))
	if err := os.Symlink("real", filepath.Join(s.Dir(), "alias")); err != nil {
		t.Fatal(err)
	}
	_, errGet := s.Get(ctx, "alias")
	_, errStat := s.Stat(ctx, "alias")
	_, errRA := objstore.NewReaderAt(ctx, s, "alias")
	for _, err := range []error{errGet, errStat, errRA} {
		if !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("symlink alias: err %v, want ErrNotExist", err)
		}
	}
}

func TestLocalFailedPutLeavesNoTemp(t *testing.T) {
	s := objstoretest.Local(t)
	ctx := context.Background()
	put(t, s, "d/obj", []byte("old"))
	if err := s.Put(ctx, "d/obj", errReader{}, -1); err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "obj" {
		t.Fatalf("directory holds %v, want only obj", ents)
	}
	if err := s.Put(ctx, ".objstore-tmp-x", strings.NewReader("x"), 1); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("reserved temp name accepted: %v", err)
	}
}

func TestLocalKeyConflicts(t *testing.T) {
	s := objstoretest.Local(t)
	ctx := context.Background()
	put(t, s, "a", []byte("file"))
	err := s.Put(ctx, "a/b", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "parent of the key is an object") {
		t.Errorf("put under an object: err %v", err)
	}
	put(t, s, "d/e", []byte("x"))
	err = s.Put(ctx, "d", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "directory holding other objects") {
		t.Errorf("put over a directory: err %v", err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Errorf("delete of a directory (not an object): %v", err)
	}
	if got := get(t, s, "d/e"); string(got) != "x" {
		t.Errorf("d/e = %q after deleting d", got)
	}
}

// TestLocalCreateConflicts: Create refuses a directory at the key and a
// key under an object, and a refused Create leaves no temporary file.
func TestLocalCreateConflicts(t *testing.T) {
	s := objstoretest.Local(t)
	ctx := context.Background()
	put(t, s, "d/e", []byte("x"))
	err := s.Create(ctx, "d", strings.NewReader("y"), 1)
	if err == nil || errors.Is(err, objstore.ErrExist) || !strings.Contains(err.Error(), "directory holding other objects") {
		t.Errorf("create over a directory: err %v", err)
	}
	err = s.Create(ctx, "d/e/f", strings.NewReader("y"), 1)
	if err == nil || !strings.Contains(err.Error(), "parent of the key is an object") {
		t.Errorf("create under an object: err %v", err)
	}
	err = s.Create(ctx, "d/e", strings.NewReader("y"), 1)
	if !errors.Is(err, objstore.ErrExist) {
		t.Errorf("create on an object: err %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "e" {
		t.Errorf("directory d holds %v, want only e", entries)
	}
	if got := get(t, s, "d/e"); string(got) != "x" {
		t.Errorf("d/e = %q after refused Creates, want %q", got, "x")
	}
}

func TestLocalDeletePrunesEmptyDirs(t *testing.T) {
	s := objstoretest.Local(t)
	put(t, s, "x/y/z/obj", []byte("1"))
	put(t, s, "x/keep", []byte("2"))
	if err := s.Delete(context.Background(), "x/y/z/obj"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "x", "y")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty directory x/y not pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "x", "keep")); err != nil {
		t.Errorf("sibling removed: %v", err)
	}
}

func TestOpenLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, url := range []string{"local://" + dir, "file://" + dir, dir} {
		s, err := objstore.Open(ctx, url, objstore.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		if want := "local://" + dir; s.String() != want {
			t.Errorf("Open(%q).String() = %q, want %q", url, s.String(), want)
		}
		s.(*objstore.Local).Close()
	}
	for url, want := range map[string]string{
		"":             "empty store URL",
		"local://":     "names no directory",
		"gs://b/x":     `unknown scheme "gs"`,
		"s3:///root":   "names no bucket",
		"s3://b/a/../": "bad root prefix",
	} {
		_, err := objstore.Open(ctx, url, objstore.Options{Endpoint: "http://127.0.0.1:1"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q): err %v, want %q", url, err, want)
		}
	}
}
