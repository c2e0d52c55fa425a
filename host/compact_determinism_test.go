package host

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestCompactDeterministicLargeChunks: a mix plan whose output chunks are
// large enough for Parquet's dictionary fallback (vector and string columns
// over 1 MiB per chunk: a dictionary page, dictionary-encoded pages, then
// PLAIN pages) writes identical bytes in two wasm and two native runs. The
// encoding_stats of such chunks used to come out in Go map order, so about
// every other such object differed between two runs.
func TestCompactDeterministicLargeChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and compacts about 30 MB four times")
	}
	ctx := context.Background()
	plugins := bundledPlugins(t, pipelineRuntime(t))
	cfg := smallGen(11)
	cfg.Segments, cfg.RowsPerSegment, cfg.ChunkRows, cfg.Dim = 2, 7000, 3500, 256
	cfg.L0Segments = 0
	run := func(native bool) map[string][]byte {
		store := objstoretest.Local(t)
		col := generate(t, store, cfg)
		col.MixPlan.JsonParams = setBinlogMaxSize(t, col.MixPlan.GetJsonParams(), 1280<<10)
		opt := WithPlugin(plugins.mix)
		if native {
			opt = Native(mixstrategy.New())
		}
		h := newTestHost(t, store, 0, nil)
		if _, err := h.Compact(ctx, col.MixPlan, opt); err != nil {
			t.Fatal(err)
		}
		return snapshot(t, store)
	}
	first := run(false)
	if n := fallbackObjects(t, first); n < 8 {
		t.Fatalf("only %d output binlogs have mixed-encoding column chunks; the test needs at least 8 to catch a random order", n)
	}
	for i, native := range []bool{false, true, true} {
		if d := diffSnapshots(first, run(native)); len(d) > 0 {
			t.Fatalf("run %d (native %v) differs from the first wasm run: %v", i+2, native, d)
		}
	}
}

// fallbackObjects counts the output insert binlogs with a column chunk whose
// data pages use more than one encoding.
func fallbackObjects(t *testing.T, objs map[string][]byte) int {
	t.Helper()
	n := 0
	for k, b := range objs {
		if !strings.Contains(k, "insert_log/") || !strings.Contains(k, "/450000000100") {
			continue
		}
		f, err := binlog.ReadFile(k, bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		pf, err := file.NewParquetReader(f.Payload(bytes.NewReader(b), 0))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
		if err != nil {
			t.Fatal(err)
		}
		data := 0
		for _, s := range cc.EncodingStats() {
			if s.PageType == 0 { // DATA_PAGE
				data++
			}
		}
		if data > 1 {
			n++
		}
		pf.Close()
	}
	return n
}
