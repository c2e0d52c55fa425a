package segwrite_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/host/internal/segwrite"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
	"github.com/compacthost/compacthost/storage/statslog"
)

const run = 250 // rows per Append in the round-trip tests

func TestRoundTrip(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			t.Run(pk.String(), func(t *testing.T) {
				c := smallConfig(pk)
				c.RootPath = "in-" + pk.String()
				in := loadInput(t, store, c, 1000)
				const chunkBytes = 40 << 10
				w, cfg := newWriter(t, store, in, chunkBytes, func(c *segwrite.Config) { c.Root = "out-" + pk.String() })
				split := 3000
				in.feed(t, w, run, func(row int) int { return row / split })
				segs, err := w.Close(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if len(segs) != 2 || segs[0].NumOfRows != 3000 || segs[1].NumOfRows != 2000 {
					t.Fatalf("outputs: %v", segs)
				}
				rows, written := w.Stats()
				if rows != 5000 || written <= 0 {
					t.Fatalf("Stats = %d rows, %d bytes", rows, written)
				}
				checkOutputs(t, store, in, cfg, segs, []int{0, split}, chunkBytes)
				var total int64
				for _, k := range listKeys(t, store, cfg.Root+"/") {
					total += int64(len(objstoretest.ReadAll(t, store, k)))
				}
				if total != written {
					t.Fatalf("Stats bytes %d, objects hold %d", written, total)
				}
			})
		}
	})
}

// checkOutputs compares every output column value with the input rows,
// checks the Binlog metadata, the chunk sizes, the log IDs and the stats
// logs. starts[i] is the first input row of output i.
func checkOutputs(t *testing.T, store objstore.Store, in *input, cfg segwrite.Config, segs []*datapb.CompactionSegment, starts []int, chunkBytes int64) {
	t.Helper()
	schema := in.col.Schema
	k := len(schema.Fields)
	var logIDs []int64
	for si, seg := range segs {
		if seg.SegmentID != segBase+int64(si) || seg.Channel != cfg.Channel || seg.StorageVersion != 0 || seg.IsSorted != cfg.IsSorted {
			t.Fatalf("output %d: %+v", si, seg)
		}
		if len(seg.InsertLogs) != k || !slices.IsSortedFunc(seg.InsertLogs, func(a, b *datapb.FieldBinlog) int { return int(a.FieldID - b.FieldID) }) {
			t.Fatalf("output %d: insert logs not one per field sorted by ID", si)
		}
		chunks := len(seg.InsertLogs[0].Binlogs)
		byField := map[int64]*datapb.FieldBinlog{}
		for _, fb := range seg.InsertLogs {
			byField[fb.FieldID] = fb
			if len(fb.Binlogs) != chunks {
				t.Fatalf("output %d: field %d has %d chunks, field %d has %d", si, fb.FieldID, len(fb.Binlogs), seg.InsertLogs[0].FieldID, chunks)
			}
		}
		if chunks < 2 {
			t.Fatalf("output %d: %d chunks; the test wants several", si, chunks)
		}
		// Stats log: one ID, taken before the last chunk's IDs.
		st := seg.Field2StatslogPaths
		if len(st) != 1 || st[0].FieldID != gen.PKField || len(st[0].Binlogs) != 1 {
			t.Fatalf("output %d: stats logs %v", si, st)
		}
		sb := st[0].Binlogs[0]
		if sb.LogPath != milvuspath.StatsLog(cfg.Root, cfg.CollectionID, cfg.PartitionID, seg.SegmentID, gen.PKField, sb.LogID) ||
			sb.EntriesNum != seg.NumOfRows {
			t.Fatalf("output %d: stats binlog %v", si, sb)
		}
		row := starts[si]
		for c := range chunks {
			first := byField[schema.Fields[0].FieldID].Binlogs[c].LogID
			if c == chunks-1 {
				// The stats log takes its ID at close, before the rest of the
				// rows, or after the last chunk when an Append flushed it.
				if sb.LogID != first-1 && sb.LogID != first+int64(k) {
					t.Fatalf("output %d: stats log ID %d, last chunk starts at %d", si, sb.LogID, first)
				}
				logIDs = append(logIDs, sb.LogID)
			}
			n := byField[schema.Fields[0].FieldID].Binlogs[c].EntriesNum
			var mem int64
			for fi, f := range schema.Fields {
				b := byField[f.FieldID].Binlogs[c]
				if b.LogID != first+int64(fi) {
					t.Fatalf("output %d chunk %d: field %d has log ID %d, want %d (schema order)", si, c, f.FieldID, b.LogID, first+int64(fi))
				}
				logIDs = append(logIDs, b.LogID)
				if b.LogPath != milvuspath.InsertLog(cfg.Root, cfg.CollectionID, cfg.PartitionID, seg.SegmentID, f.FieldID, b.LogID) {
					t.Fatalf("log path %q", b.LogPath)
				}
				if b.EntriesNum != n {
					t.Fatalf("output %d chunk %d: entries_num %d and %d", si, c, b.EntriesNum, n)
				}
				got, desc := readBinlog(t, store, b.LogPath, f)
				want := array.NewSlice(in.all[f.FieldID], int64(row), int64(row)+n)
				if !array.Equal(got, want) {
					t.Fatalf("output %d chunk %d field %d: values differ from input rows %d..%d", si, c, f.FieldID, row, int64(row)+n)
				}
				if orig, _ := desc.OriginalSize(); orig != b.MemorySize || b.MemorySize != binlog.MemorySize(got) {
					t.Fatalf("field %d: memory_size %d, original_size %d, decoded %d", f.FieldID, b.MemorySize, orig, binlog.MemorySize(got))
				}
				if desc.SegmentID != seg.SegmentID || desc.CollectionID != cfg.CollectionID || desc.PartitionID != cfg.PartitionID ||
					desc.FieldID != f.FieldID || desc.Timestamp != cfg.Timestamp || desc.StartTimestamp != 0 || desc.EndTimestamp != 0 {
					t.Fatalf("descriptor %+v", desc)
				}
				if size := int64(len(objstoretest.ReadAll(t, store, b.LogPath))); size != b.LogSize {
					t.Fatalf("log_size %d, object %d bytes", b.LogSize, size)
				}
				if f.FieldID == gen.TimestampField {
					ts := got.(*array.Int64).Int64Values()
					if b.TimestampFrom != uint64(slices.Min(ts)) || b.TimestampTo != uint64(slices.Max(ts)) {
						t.Fatalf("chunk ts range %d..%d, values %d..%d", b.TimestampFrom, b.TimestampTo, slices.Min(ts), slices.Max(ts))
					}
				}
				mem += b.MemorySize * binlog.ExpansionRatio(f)
				got.Release()
				want.Release()
			}
			checkChunkSize(t, in, row, int(n), c == chunks-1, mem, chunkBytes)
			row += int(n)
		}
		if int64(row-starts[si]) != seg.NumOfRows {
			t.Fatalf("output %d: chunks hold %d rows, NumOfRows %d", si, row-starts[si], seg.NumOfRows)
		}
		checkStats(t, store, in, sb.LogPath, starts[si], int(seg.NumOfRows))
	}
	slices.Sort(logIDs)
	for i, id := range logIDs {
		if id != logBase+int64(i) {
			t.Fatalf("log IDs are not consecutive from the range start: %d at position %d", id, i)
		}
	}
	if cfg.LogIDs.Next != logBase+int64(len(logIDs)) {
		t.Fatalf("log range at %d after %d IDs", cfg.LogIDs.Next, len(logIDs))
	}
}

// checkChunkSize: a chunk is flushed at the first Append that brings its
// written size (memory_size, Array fields times binlog.ExpansionRatio) to
// ChunkBytes, so every chunk was below it one run before its end, and every
// chunk but an output's last (flushed at close) reaches it. Slack covers
// validity bitmaps, which the writer counts per appended slice (a byte each
// at most) and the binlog once.
func checkChunkSize(t *testing.T, in *input, row, n int, last bool, mem, chunkBytes int64) {
	t.Helper()
	slack := int64((n/run + 1) * len(in.col.Schema.Fields))
	var before int64
	for _, f := range in.col.Schema.Fields {
		s := array.NewSlice(in.all[f.FieldID], int64(row), int64(row+max(n-run, 0)))
		before += binlog.MemorySize(s) * binlog.ExpansionRatio(f)
		s.Release()
	}
	if (!last && mem+slack < chunkBytes) || before >= chunkBytes+slack {
		t.Fatalf("chunk of %d rows holds %d bytes (%d before its last run), ChunkBytes %d", n, mem, before, chunkBytes)
	}
}

func checkStats(t *testing.T, store objstore.Store, in *input, key string, first, n int) {
	t.Helper()
	list, err := statslog.Decode(key, objstoretest.ReadAll(t, store, key))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d stats in %s", len(list), key)
	}
	s := list[0]
	if s.FieldID != gen.PKField || s.Filter.Type() != statslog.BlockedBF {
		t.Fatalf("stats %+v", s)
	}
	switch pk := in.all[gen.PKField].(type) {
	case *array.Int64:
		vals := pk.Int64Values()[first : first+n]
		if s.Min.Int != slices.Min(vals) || s.Max.Int != slices.Max(vals) {
			t.Fatalf("stats range %d..%d, pks %d..%d", s.Min.Int, s.Max.Int, slices.Min(vals), slices.Max(vals))
		}
		for _, v := range vals {
			if !s.MayContainInt64(v) {
				t.Fatalf("bloom filter misses pk %d", v)
			}
		}
	case *array.String:
		var vals []string
		for i := first; i < first+n; i++ {
			vals = append(vals, pk.Value(i))
		}
		if s.Min.Str != slices.Min(vals) || s.Max.Str != slices.Max(vals) {
			t.Fatalf("stats range %q..%q, pks %q..%q", s.Min.Str, s.Max.Str, slices.Min(vals), slices.Max(vals))
		}
		for _, v := range vals {
			if !s.MayContainVarChar(v) {
				t.Fatalf("bloom filter misses pk %q", v)
			}
		}
	}
}

func TestPlaceholder(t *testing.T) {
	store := objstoretest.Local(t)
	schema := gen.Schema(smallConfig(schemapb.DataType_VarChar))
	ids := &segwrite.IDRange{Next: 40, End: 41}
	w, err := segwrite.New(segwrite.Config{Store: store, Root: "out", Schema: schema, Channel: "ch",
		SegmentIDs: ids, LogIDs: &segwrite.IDRange{Next: 1, End: 2}, IsSorted: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), 0, nil, 0, 0); err != nil { // zero rows: nothing starts
		t.Fatal(err)
	}
	segs, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].SegmentID != 40 || segs[0].NumOfRows != 0 || segs[0].Channel != "ch" ||
		len(segs[0].InsertLogs) != 0 || len(segs[0].Field2StatslogPaths) != 0 || !segs[0].IsSorted {
		t.Fatalf("placeholder %v", segs)
	}
	if keys := listKeys(t, store, ""); len(keys) != 0 {
		t.Fatalf("placeholder wrote %v", keys)
	}
	if _, err := w.Close(context.Background()); err == nil {
		t.Fatal("second Close succeeded")
	}
}

func TestAbortRemovesEverything(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
		inputKeys := listKeys(t, store, "")
		t.Run("after close", func(t *testing.T) {
			w, _ := newWriter(t, store, in, 32<<10, nil)
			in.feed(t, w, 400, func(row int) int { return row / 1700 })
			if _, err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(listKeys(t, store, "out/")) == 0 {
				t.Fatal("nothing written")
			}
			if err := w.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
			if keys := listKeys(t, store, "out/"); len(keys) != 0 {
				t.Fatalf("after Abort: %v", keys)
			}
		})
		t.Run("after a failed upload", func(t *testing.T) {
			fs := &failingStore{Store: store}
			fs.n.Store(25)
			w, _ := newWriter(t, fs, in, 32<<10, nil)
			var err error
			ctx := context.Background()
			for _, b := range in.batches {
				if err = w.Append(ctx, 0, b.Columns, 0, b.Rows); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), "injected put failure for out/insert_log/") {
				t.Fatalf("Append error %v", err)
			}
			if err2 := w.Append(ctx, 0, in.batches[0].Columns, 0, 1); err2 == nil {
				t.Fatal("Append after a failure succeeded")
			}
			if len(listKeys(t, store, "out/")) == 0 {
				t.Fatal("nothing was written before the failure")
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel() // Abort must still delete with a cancelled context
			if err := w.Abort(cctx); err != nil {
				t.Fatal(err)
			}
			if keys := listKeys(t, store, "out/"); len(keys) != 0 {
				t.Fatalf("after Abort: %v", keys)
			}
		})
		if got := listKeys(t, store, ""); !slices.Equal(got, inputKeys) {
			t.Fatalf("inputs changed: %d keys before, %d after", len(inputKeys), len(got))
		}
	})
}

func TestDeterministicBytes(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_VarChar), 700)
	sameBytes(t, store, func(root string) {
		w, _ := newWriter(t, store, in, 50<<10, func(c *segwrite.Config) { c.Root = root; c.UploadParallelism = 3 })
		in.feed(t, w, 300, func(row int) int { return row / 2222 })
		if _, err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// sameBytes runs write twice, under the roots "one" and "two", and fails
// unless both wrote the same objects (at least minObjects) byte for byte.
func sameBytes(t *testing.T, store objstore.Store, write func(root string)) {
	t.Helper()
	read := func(root string) map[string][]byte {
		write(root)
		out := map[string][]byte{}
		for _, k := range listKeys(t, store, root+"/") {
			out[strings.TrimPrefix(k, root+"/")] = objstoretest.ReadAll(t, store, k)
		}
		return out
	}
	a, b := read("one"), read("two")
	if len(a) < minObjects || len(a) != len(b) {
		t.Fatalf("%d and %d objects", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("%s differs between two runs", k)
		}
	}
}

// minObjects is the least a determinism test must write to mean anything:
// several chunks of several files and the stats logs of two outputs.
const minObjects = 10

func TestRangeExhaustion(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
	ctx := context.Background()
	cols := in.batches[0].Columns
	k := len(in.col.Schema.Fields)

	// No segment ID left.
	w, _ := newWriter(t, store, in, 1<<30, func(c *segwrite.Config) { c.SegmentIDs = &segwrite.IDRange{Next: 5, End: 5} })
	if err := w.Append(ctx, 0, cols, 0, 10); err == nil || !strings.Contains(err.Error(), "ID range [5, 5) exhausted") {
		t.Fatalf("segment IDs: %v", err)
	}
	// Enough log IDs for the stats log but not for the last chunk.
	w, _ = newWriter(t, store, in, 1<<30, func(c *segwrite.Config) { c.LogIDs = &segwrite.IDRange{Next: 100, End: 100 + int64(k)} })
	if err := w.Append(ctx, 0, cols, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(ctx); err == nil || !strings.Contains(err.Error(), "exhausted: 9 IDs needed, 8 left") {
		t.Fatalf("log IDs: %v", err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, store, "out/"); len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
	// A chunk flush mid-way with too few IDs.
	w, _ = newWriter(t, store, in, 1, func(c *segwrite.Config) { c.LogIDs = &segwrite.IDRange{Next: 100, End: 100 + int64(k) - 1} })
	if err := w.Append(ctx, 0, cols, 0, 10); err == nil || !strings.Contains(err.Error(), "insert log IDs") {
		t.Fatalf("chunk IDs: %v", err)
	}

	r := &segwrite.IDRange{Next: 10, End: 13}
	if first, err := r.Take(2); first != 10 || err != nil {
		t.Fatalf("Take(2) = %d, %v", first, err)
	}
	if _, err := r.Take(2); err == nil || r.Next != 12 {
		t.Fatalf("Take past the end: %v, Next %d", err, r.Next)
	}
	if first, err := r.Take(1); first != 12 || err != nil || r.Next != 13 {
		t.Fatalf("Take(1) = %d, %v", first, err)
	}
}

func TestAppendErrors(t *testing.T) {
	store := objstoretest.Local(t)
	in := loadInput(t, store, smallConfig(schemapb.DataType_Int64), 1000)
	ctx := context.Background()
	cols := in.batches[0].Columns
	without := func(id int64) map[int64]arrow.Array {
		m := map[int64]arrow.Array{}
		for k, v := range cols {
			if k != id {
				m[k] = v
			}
		}
		return m
	}
	swapped := without(gen.CategoryField)
	swapped[gen.CategoryField] = cols[gen.PriceField]
	cases := []struct {
		name string
		do   func(w *segwrite.Writer) error
		want string
	}{
		{"missing column", func(w *segwrite.Writer) error { return w.Append(ctx, 0, without(gen.TitleField), 0, 5) }, "no column for field 104 (title)"},
		{"wrong type", func(w *segwrite.Writer) error { return w.Append(ctx, 0, swapped, 0, 5) }, "field 102 (category) column has type float64, want int32"},
		{"rows out of range", func(w *segwrite.Writer) error { return w.Append(ctx, 0, cols, 990, 20) }, "rows [990, 1010) are beyond"},
		{"skipped output", func(w *segwrite.Writer) error { return w.Append(ctx, 1, cols, 0, 5) }, "output 1 does not follow output -1"},
		{"finished output", func(w *segwrite.Writer) error {
			if err := w.Append(ctx, 0, cols, 0, 5); err != nil {
				return err
			}
			if err := w.Append(ctx, 1, cols, 5, 5); err != nil {
				return err
			}
			return w.Append(ctx, 0, cols, 10, 5)
		}, "output 0 (segment 470000000000000000) was finished"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := newWriter(t, store, in, 1<<30, nil)
			defer w.Abort(ctx)
			if err := tc.do(w); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := segwrite.New(segwrite.Config{Store: store, Schema: in.col.Schema}); err == nil {
		t.Fatal("New without ID ranges succeeded")
	}
}

// Runs of a few rows (scattered deletes) are joined into larger pieces
// before they reach the encoder; the outputs hold exactly the input rows,
// as when the same rows arrive in long runs.
func TestShortRunsJoined(t *testing.T) {
	store := objstoretest.Local(t)
	c := smallConfig(schemapb.DataType_Int64)
	in := loadInput(t, store, c, 1000)
	const chunkBytes = 40 << 10
	w, _ := newWriter(t, store, in, chunkBytes, func(c *segwrite.Config) { c.Root = "short" })
	in.feed(t, w, 3, func(row int) int { return row / 3000 })
	segs, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[0].NumOfRows != 3000 {
		t.Fatalf("outputs: %v", segs)
	}
	row := int64(0)
	for si, seg := range segs {
		for _, fb := range seg.InsertLogs {
			f := fieldByID(t, in, fb.FieldID)
			at := row
			for _, b := range fb.Binlogs {
				got, _ := readBinlog(t, store, b.LogPath, f)
				want := array.NewSlice(in.all[f.FieldID], at, at+int64(got.Len()))
				if !array.Equal(got, want) {
					t.Fatalf("output %d field %d: rows %d+%d differ from the input", si, f.FieldID, at, got.Len())
				}
				want.Release()
				at += int64(got.Len())
			}
			if at != row+seg.NumOfRows {
				t.Fatalf("output %d field %d holds %d rows, want %d", si, f.FieldID, at-row, seg.NumOfRows)
			}
		}
		row += seg.NumOfRows
	}
}

func fieldByID(t *testing.T, in *input, id int64) *schemapb.FieldSchema {
	t.Helper()
	for _, f := range in.col.Schema.Fields {
		if f.FieldID == id {
			return f
		}
	}
	t.Fatalf("no field %d", id)
	return nil
}
