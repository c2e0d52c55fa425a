package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// tmpPrefix starts the name of every in-flight Put's temporary file. Keys
// with a segment starting with it are rejected by [Local], and List skips
// such files.
const tmpPrefix = ".objstore-tmp-"

// Local is a [Store] backed by a directory. An object with key "a/b/c" is
// the regular file <dir>/a/b/c.
//
//   - Put writes a temporary file in the destination directory, fsyncs it,
//     renames it over the key and fsyncs the directory, so readers see
//     either the old or the new object, never a partial one, and the object
//     survives a crash once Put returns. Missing parent directories are
//     created. Create does the same but publishes the file with a hard
//     link, which fails on an existing key.
//   - All access goes through an [os.Root], so neither a key nor a symlink
//     planted inside the directory can reach files outside it.
//   - Delete removes the file and then prunes parent directories that became
//     empty (up to, not including, the root), mirroring S3 where a prefix
//     disappears with its last object. Put retries if a concurrent Delete
//     prunes the directory it is about to write into.
//   - Only regular files are objects: directories, symlinks and temporary
//     files are invisible to Get, Stat and List. Temporary files left by a
//     crashed process stay invisible but are not cleaned up automatically;
//     they are named ".objstore-tmp-*".
type Local struct {
	dir  string // absolute path of the root directory
	root *os.Root
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating it if needed) the directory dir as a store.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: local store %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: local store %q: %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("objstore: local store %q: %w", abs, err)
	}
	return &Local{dir: abs, root: root}, nil
}

// Dir returns the absolute path of the store's directory.
func (l *Local) Dir() string { return l.dir }

// String returns "local://" followed by the absolute directory path.
func (l *Local) String() string { return "local://" + filepath.ToSlash(l.dir) }

// Close releases the directory handle. The store must not be used after.
func (l *Local) Close() error { return l.root.Close() }

func (l *Local) checkKey(key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, tmpPrefix) || strings.Contains(key, "/"+tmpPrefix) {
		return fmt.Errorf("%w: segments starting with %q are reserved for temporary files", ErrInvalidKey, tmpPrefix)
	}
	return nil
}

// mapErr turns "no such file" conditions into ErrNotExist.
func mapErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotExist
	}
	return err
}

// openFile opens the regular file holding key and returns it with its size.
func (l *Local) openFile(ctx context.Context, key string) (*os.File, int64, error) {
	if err := l.checkKey(key); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	// A symlink is not an object (as in Stat and List). os.Root already
	// keeps any link inside the root; this check only keeps the three
	// operations consistent.
	if st, err := l.root.Lstat(key); err != nil {
		return nil, 0, mapErr(err)
	} else if !st.Mode().IsRegular() {
		return nil, 0, ErrNotExist
	}
	f, err := l.root.Open(key)
	if err != nil {
		return nil, 0, mapErr(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, ErrNotExist
	}
	return f, st.Size(), nil
}

// Get implements [Store].
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f, _, err := l.openFile(ctx, key)
	if err != nil {
		return nil, wrapErr("get", l, key, err)
	}
	return f, nil
}

// GetRange implements [Store].
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	f, size, err := l.openFile(ctx, key)
	if err != nil {
		return nil, wrapErr("get range", l, key, err)
	}
	n, err = checkRange(off, n, size)
	if err != nil {
		f.Close()
		return nil, wrapErr("get range", l, key, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

// Stat implements [Store].
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := l.checkKey(key); err != nil {
		return ObjectInfo{}, wrapErr("stat", l, key, err)
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, wrapErr("stat", l, key, err)
	}
	st, err := l.root.Lstat(key)
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotExist
	}
	if err != nil {
		return ObjectInfo{}, wrapErr("stat", l, key, mapErr(err))
	}
	return ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Put implements [Store].
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := l.checkKey(key); err != nil {
		return wrapErr("put", l, key, err)
	}
	if err := l.put(ctx, key, r, size); err != nil {
		return wrapErr("put", l, key, err)
	}
	return nil
}

func (l *Local) put(ctx context.Context, key string, r io.Reader, size int64) error {
	dir := path.Dir(key)
	tmp, err := l.writeTemp(ctx, dir, r, size)
	if err != nil {
		return err
	}
	if err := l.root.Rename(tmp, key); err != nil {
		l.root.Remove(tmp)
		if st, serr := l.root.Lstat(key); serr == nil && st.IsDir() {
			return fmt.Errorf("key is a directory holding other objects: %w", err)
		}
		return err
	}
	return l.syncDir(dir)
}

// Create implements [Store]. The object is written to a temporary file
// like Put's and published with a hard link, which the kernel refuses
// when the key exists: no window between a check and the write.
func (l *Local) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := l.checkKey(key); err != nil {
		return wrapErr("create", l, key, err)
	}
	if err := l.create(ctx, key, r, size); err != nil {
		return wrapErr("create", l, key, err)
	}
	return nil
}

func (l *Local) create(ctx context.Context, key string, r io.Reader, size int64) error {
	dir := path.Dir(key)
	tmp, err := l.writeTemp(ctx, dir, r, size)
	if err != nil {
		return err
	}
	lerr := l.root.Link(tmp, key)
	l.root.Remove(tmp)
	if lerr != nil {
		if !errors.Is(lerr, fs.ErrExist) {
			return lerr
		}
		if st, serr := l.root.Lstat(key); serr == nil && st.IsDir() {
			return fmt.Errorf("key is a directory holding other objects: %w", lerr)
		} else if serr == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("key holds a %s, not an object: %w", st.Mode().Type(), lerr)
		}
		return ErrExist
	}
	if err := l.syncDir(dir); err != nil {
		// The object is ours (the link succeeded) but may not survive a
		// crash; take it back so that a failed Create leaves nothing.
		l.root.Remove(key)
		return err
	}
	return nil
}

// writeTemp writes r to a new, fsynced temporary file in dir and returns
// its name. On error no temporary file remains.
func (l *Local) writeTemp(ctx context.Context, dir string, r io.Reader, size int64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, tmp, err := l.createTemp(dir)
	if err != nil {
		return "", err
	}
	if err := fillTemp(ctx, f, r, size); err != nil {
		f.Close()
		l.root.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// fillTemp copies r into f, checks the size, fsyncs and closes f.
func fillTemp(ctx context.Context, f *os.File, r io.Reader, size int64) error {
	written, err := io.Copy(f, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", written, err)
	}
	if size >= 0 && written != size {
		return fmt.Errorf("reader yielded %d bytes, declared size is %d", written, size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// createTemp creates a fresh temporary file in dir, creating dir first. It
// retries when a concurrent Delete prunes dir between the two steps.
func (l *Local) createTemp(dir string) (*os.File, string, error) {
	var lastErr error
	for range 10 {
		if dir != "." {
			if err := l.root.MkdirAll(dir, 0o755); err != nil {
				if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
					return nil, "", fmt.Errorf("a parent of the key is an object, not a directory: %w", err)
				}
				return nil, "", err
			}
		}
		name := path.Join(dir, fmt.Sprintf("%s%016x", tmpPrefix, rand.Uint64()))
		f, err := l.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
		lastErr = err
	}
	return nil, "", fmt.Errorf("cannot create a temporary file in %q: %w", dir, lastErr)
}

// syncDir fsyncs a directory so a rename into it is durable. A directory
// that vanished meanwhile (a concurrent Delete pruned it) is not an error.
func (l *Local) syncDir(dir string) error {
	d, err := l.root.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Delete implements [Store].
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := l.checkKey(key); err != nil {
		return wrapErr("delete", l, key, err)
	}
	if err := ctx.Err(); err != nil {
		return wrapErr("delete", l, key, err)
	}
	st, err := l.root.Lstat(key)
	if err != nil {
		if mapErr(err) == ErrNotExist {
			return nil
		}
		return wrapErr("delete", l, key, err)
	}
	if st.IsDir() {
		return nil // a directory is not an object
	}
	if err := l.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrapErr("delete", l, key, err)
	}
	// Prune now-empty parents; Remove fails on the first non-empty one.
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if l.root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List implements [Store].
func (l *Local) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, wrapErr("list", l, prefix, err)
	}
	// Walk only the deepest directory the prefix fully names.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var out []ObjectInfo
	err := fs.WalkDir(l.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // vanished concurrently, or start is not a directory
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			// Skip subtrees that cannot match the prefix.
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(p, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, ObjectInfo{Key: p, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, wrapErr("list", l, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
