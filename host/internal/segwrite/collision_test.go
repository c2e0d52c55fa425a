package segwrite_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/packed"
)

// writeAll appends every input row to output 0 in batches and closes the
// writer, returning the first error.
func writeAll(in *input, w *segwrite.Writer) error {
	ctx := context.Background()
	for _, b := range in.batches {
		if err := w.Append(ctx, 0, b.Columns, 0, b.Rows); err != nil {
			return err
		}
	}
	_, err := w.Close(ctx)
	return err
}

// TestCollisionKeepsExistingObject: in either storage version, an object
// already under one of the keys the writer will use (the stats log, the
// first insert object of the second chunk) makes the write fail with an
// error naming that key; the object is byte-identical afterwards and Abort
// removes everything else the writer wrote, and nothing more.
func TestCollisionKeepsExistingObject(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
		groups, err := packed.SplitGroups(in.col.Schema, packed.DefaultSplitPolicy(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			version  int64
			perChunk int64 // insert objects (log IDs) per chunk
			firstDir int64 // the key directory of a chunk's first object
		}{
			{0, int64(len(in.col.Schema.GetFields())), in.col.Schema.GetFields()[0].GetFieldID()},
			{2, int64(len(groups)), groups[0].ID},
		} {
			t.Run(fmt.Sprintf("v%d", tc.version), func(t *testing.T) {
				version := func(c *segwrite.Config) { c.StorageVersion = tc.version }
				checkCollisions(t, store, in, version, tc.perChunk, tc.firstDir)
			})
		}
	})
}

func checkCollisions(t *testing.T, store objstore.Store, in *input, version func(*segwrite.Config), perChunk, firstDir int64) {
	t.Helper()
	w, _ := newWriter(t, store, in, 32<<10, version)
	if err := writeAll(in, w); err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, store, "out/")
	if err := w.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := in.col.Config
	secondChunk := fmt.Sprintf("out/insert_log/%d/%d/%d/%d/%d", c.CollectionID, c.PartitionID, segBase, firstDir, logBase+perChunk)
	var stats string
	for _, k := range keys {
		if strings.Contains(k, "/stats_log/") {
			stats = k
		}
	}
	if stats == "" || !slices.Contains(keys, secondChunk) {
		t.Fatalf("outputs %v lack a stats log or %s", keys, secondChunk)
	}
	for _, victim := range []string{secondChunk, stats} {
		t.Run(victim[strings.Index(victim, "/")+1:strings.Index(victim, "_log")], func(t *testing.T) {
			theirs := []byte("an object this task did not write")
			put(t, store, victim, theirs)
			w, _ := newWriter(t, store, in, 32<<10, version)
			err := writeAll(in, w)
			if !errors.Is(err, objstore.ErrExist) || !strings.Contains(err.Error(), fmt.Sprintf("%q", victim)) {
				t.Fatalf("write over %s: error %v, want ErrExist naming the key", victim, err)
			}
			if err := w.Abort(context.Background()); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if left := listKeys(t, store, "out/"); !slices.Equal(left, []string{victim}) {
				t.Fatalf("after Abort the store holds %v, want only %s", left, victim)
			}
			if got := objstoretest.ReadAll(t, store, victim); string(got) != string(theirs) {
				t.Fatalf("%s was changed to %d bytes", victim, len(got))
			}
			if err := store.Delete(context.Background(), victim); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func put(t *testing.T, store objstore.Store, key string, b []byte) {
	t.Helper()
	if err := store.Put(context.Background(), key, strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// flakyDeletes fails every Delete until the time in until (Unix nanos).
type flakyDeletes struct {
	objstore.Store
	until   atomic.Int64
	refused atomic.Int64
}

var errDown = errors.New("injected: store unreachable")

func (f *flakyDeletes) Delete(ctx context.Context, key string) error {
	if time.Now().UnixNano() < f.until.Load() {
		f.refused.Add(1)
		return errDown
	}
	return f.Store.Delete(ctx, key)
}

// TestCleanupRetries: a delete outage shorter than the cleanup's context
// is waited out; a longer one leaves a *LeftError with every remaining
// key, their common prefix, and no key whose Create failed.
func TestCleanupRetries(t *testing.T) {
	base := objstoretest.Local(t)
	in := loadInput(t, base, smallConfig(schemapb.DataType_Int64), 1000)
	store := &flakyDeletes{Store: base}
	write := func() (*segwrite.Writer, []string) {
		w, _ := newWriter(t, store, in, 32<<10, nil)
		if err := writeAll(in, w); err != nil {
			t.Fatal(err)
		}
		return w, listKeys(t, base, "out/")
	}

	w, _ := write()
	store.until.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Abort(ctx); err != nil {
		t.Fatalf("Abort through a 300 ms outage: %v", err)
	}
	if left := listKeys(t, base, "out/"); len(left) != 0 {
		t.Fatalf("after Abort: %v", left)
	}
	if store.refused.Load() == 0 {
		t.Fatal("no delete was refused: the outage was not exercised")
	}

	w, keys := write()
	store.until.Store(time.Now().Add(time.Hour).UnixNano())
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Abort(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Abort took %v past a 200 ms cleanup deadline", took)
	}
	var left *segwrite.LeftError
	if !errors.As(err, &left) || !errors.Is(err, errDown) {
		t.Fatalf("Abort during an outage: %v, want a *LeftError wrapping the delete error", err)
	}
	const prefix = "out/" // insert and stats logs
	if !slices.Equal(left.Keys, keys) || left.Prefix() != prefix || left.Unsure != 0 {
		t.Fatalf("left %d keys under %q (unsure %d), want the %d written under %q", len(left.Keys), left.Prefix(), left.Unsure, len(keys), prefix)
	}
	want := fmt.Sprintf("%d objects left under %q in %s", len(keys), prefix, base)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
}

// TestCreatedRecord: only a successful Create makes a key the task's to
// delete; an unknown outcome is reported, never deleted; a refused Create
// is neither.
func TestCreatedRecord(t *testing.T) {
	store := objstoretest.Local(t)
	for _, k := range []string{"a/seg/1/x", "a/seg/1/y", "a/seg/2/z"} {
		put(t, store, k, []byte(k))
	}
	var c segwrite.Created
	c.Record("a/seg/1/x", nil)
	c.Record("a/seg/1/y", fmt.Errorf("timeout: %w", objstore.ErrUnknownOutcome))
	c.Record("a/seg/2/z", fmt.Errorf("taken: %w", objstore.ErrExist))
	err := c.Delete(context.Background(), store, 2)
	var left *segwrite.LeftError
	if !errors.As(err, &left) || !slices.Equal(left.Keys, []string{"a/seg/1/y"}) || left.Unsure != 1 || left.Prefix() != "a/seg/1/" {
		t.Fatalf("Delete: %v (%+v), want only a/seg/1/y left as unsure", err, left)
	}
	if want := `1 objects left under "a/seg/1/" in ` + store.String() + " for the operator's sweep (1 whose creation had an unknown outcome)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if got := listKeys(t, store, ""); !slices.Equal(got, []string{"a/seg/1/y", "a/seg/2/z"}) {
		t.Fatalf("store holds %v, want a/seg/1/y and a/seg/2/z", got)
	}
}
