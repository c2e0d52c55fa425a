package packed

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/objstore"
)

// A stored file reads through objstore.NewReaderAt; a store failure is the
// store's error, not a corrupt file.
func TestReadThroughObjstore(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := "files/insert_log/1/2/3/0/7"
	b := rawFile(t, sysCols, twoGroups, compress.Codecs.Zstd, goodList, goodRGM, goodVer)
	if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	ra, err := objstore.NewReaderAt(ctx, st, key)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(key, ra, ra.Size(), sysFields, ReaderOptions{Fields: []int64{100}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := rd.Next()
	if err != nil || rec.NumRows() != 10 {
		t.Fatalf("first batch: %v", err)
	}
	rec.Release()
	rd.Close()

	ra.Close() // later reads fail in the store
	_, err = NewReader(key, ra, ra.Size(), sysFields, ReaderOptions{})
	if err == nil || !objstore.IsStoreError(err) || errors.Is(err, corrupt.Err) {
		t.Fatalf("got %v; want a store error, not marked corrupt", err)
	}
}
