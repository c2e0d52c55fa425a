package host

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestCompactMilvusShapedV2 compacts a segment shaped as Milvus's own
// compactor writes storage v2: one file per column group for the whole
// segment. The first compaction writes it (v2 output, binlog_max_size
// larger than the data); the second reads it with every v2 file read in
// place (DownloadLimit -1): no insert file is fetched whole and the rows
// match the reference. (mempool's TestEstimateStorageV2Objects checks that
// the lease counts such files by their columns, not their sizes.)
func TestCompactMilvusShapedV2(t *testing.T) {
	ctx := context.Background()
	base := objstoretest.Local(t)
	col := generate(t, base, smallGen(21))
	first := col.MixPlan
	first.JsonParams = setBinlogMaxSize(t, first.JsonParams, 1<<40)
	h := newTestHost(t, base, 0, func(o *Options) { o.OutputStorageVersion = StorageV2 })
	res, err := h.Compact(ctx, first, Native(mixstrategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	out := res.GetSegments()[0]
	for _, fb := range out.GetInsertLogs() {
		if len(fb.GetBinlogs()) != 1 {
			t.Fatalf("column group %d has %d files, want one for the whole segment", fb.GetFieldID(), len(fb.GetBinlogs()))
		}
	}

	second := proto.Clone(first).(*datapb.CompactionPlan)
	second.PlanID++
	second.JsonParams = `{"storage_version": 2}`
	in := first.GetSegmentBinlogs()[0]
	second.SegmentBinlogs = []*datapb.CompactionSegmentBinlogs{{
		SegmentID: out.GetSegmentID(), CollectionID: in.GetCollectionID(), PartitionID: in.GetPartitionID(),
		Level: datapb.SegmentLevel_L1, InsertChannel: in.GetInsertChannel(), StorageVersion: 2,
		FieldBinlogs: out.GetInsertLogs(), Field2StatslogPaths: out.GetField2StatslogPaths(),
	}}
	segs, logs := first.GetPreAllocatedSegmentIDs(), first.GetPreAllocatedLogIDs()
	second.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: segs.GetEnd(), End: segs.GetEnd() + (segs.GetEnd() - segs.GetBegin())}
	second.PreAllocatedLogIDs = &datapb.IDRange{Begin: logs.GetEnd(), End: logs.GetEnd() + (logs.GetEnd() - logs.GetBegin())}
	second.BeginLogID = second.PreAllocatedLogIDs.Begin

	rec := &wholeGetRecorder{Store: base}
	var pr progressRecorder
	h2 := newTestHost(t, rec, 0, func(o *Options) { o.DownloadLimit, o.Progress = -1, pr.record })
	res2, err := h2.Compact(ctx, second, Native(mixstrategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkMix(t, base, second, res2, pr.final())
	if got := pr.final().RowsWritten; got != out.GetNumOfRows() {
		t.Fatalf("second compaction wrote %d rows, its input holds %d", got, out.GetNumOfRows())
	}
	for _, k := range rec.keys() {
		if strings.Contains(k, "/insert_log/") {
			t.Errorf("insert file %s fetched whole; v2 files over DownloadLimit are read in place", k)
		}
	}
}

// wholeGetRecorder records the keys fetched whole with Get.
type wholeGetRecorder struct {
	objstore.Store
	mu    sync.Mutex
	whole []string
}

func (s *wholeGetRecorder) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	s.whole = append(s.whole, key)
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *wholeGetRecorder) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.whole...)
}
