package objstore_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/storage/objstore"
)

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "files/insert_log/1/2/3/100/7", "a.b/..c/c..", "...", ".hidden/x", "a b/ü"} {
		if err := objstore.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
	for k, want := range map[string]string{
		"":      "empty key",
		"/a":    "is absolute",
		"a/":    "ends with /",
		"a//b":  "empty path segment",
		"a/../": "ends with /",
		"a/..":  `has a ".." segment`,
		"./a":   `has a "." segment`,
		`a\b`:   "backslash",
	} {
		err := objstore.ValidateKey(k)
		if !errors.Is(err, objstore.ErrInvalidKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey with %q", k, err, want)
		}
	}
}

// FuzzValidateKey: every accepted key is a clean relative path that stays
// inside the root when joined to it.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../b", "/abs", "a//b", `a\b`, ".", "a/./b", "x/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if objstore.ValidateKey(key) != nil {
			return
		}
		if path.Clean(key) != key || path.IsAbs(key) || strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("accepted unclean key %q", key)
		}
		if j := path.Join("/root", key); !strings.HasPrefix(j, "/root/") {
			t.Fatalf("accepted key %q escapes the root: %q", key, j)
		}
	})
}
