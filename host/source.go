package host

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compacthost/compacthost/storage/objstore"
)

// PluginExt is the file extension of plugin binaries: name@version.wasm.
const PluginExt = ".wasm"

// SourceEntry is one plugin binary in a Source.
type SourceEntry struct {
	Name    string // base name, "name@version.wasm"
	Size    int64
	ModTime time.Time
}

// Source lists and reads plugin binaries for a Registry.
type Source interface {
	// List returns the *.wasm entries directly under the source.
	List(ctx context.Context) ([]SourceEntry, error)
	// Read returns at most limit bytes of the named entry.
	Read(ctx context.Context, name string, limit int64) ([]byte, error)
	// String names the source in logs and errors.
	String() string
}

// DirSource serves plugins from the *.wasm files of a local directory.
func DirSource(dir string) Source { return dirSource(dir) }

type dirSource string

func (d dirSource) String() string { return string(d) }

func (d dirSource) List(ctx context.Context) ([]SourceEntry, error) {
	des, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("host: listing plugin directory: %w", err)
	}
	var out []SourceEntry
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), PluginExt) {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		out = append(out, SourceEntry{Name: de.Name(), Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}

func (d dirSource) Read(ctx context.Context, name string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return nil, fmt.Errorf("host: reading plugin: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("host: reading plugin %s: %w", f.Name(), err)
	}
	return b, nil
}

// StoreSource serves plugins from the *.wasm objects directly under prefix
// in an object store ("plugins/" lists "plugins/mix@1.0.0.wasm" but not
// "plugins/old/mix@0.9.wasm").
func StoreSource(store objstore.Store, prefix string) Source {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &storeSource{store: store, prefix: prefix}
}

type storeSource struct {
	store  objstore.Store
	prefix string
}

func (s *storeSource) String() string { return s.store.String() + "/" + s.prefix }

func (s *storeSource) List(ctx context.Context) ([]SourceEntry, error) {
	infos, err := s.store.List(ctx, s.prefix)
	if err != nil {
		return nil, fmt.Errorf("host: listing plugins: %w", err)
	}
	var out []SourceEntry
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, s.prefix)
		if strings.Contains(name, "/") || !strings.HasSuffix(name, PluginExt) {
			continue
		}
		out = append(out, SourceEntry{Name: name, Size: in.Size, ModTime: in.ModTime})
	}
	return out, nil
}

func (s *storeSource) Read(ctx context.Context, name string, limit int64) ([]byte, error) {
	rc, err := s.store.Get(ctx, s.prefix+name)
	if err != nil {
		return nil, fmt.Errorf("host: reading plugin: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("host: reading plugin %s%s from %s: %w", s.prefix, name, s.store, err)
	}
	return b, nil
}
