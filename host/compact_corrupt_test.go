package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/corrupt"
	"github.com/compacthost/compacthost/storage/gen"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// Offsets in a binlog of the descriptor's fixed fields: magic, event
// header, then collection, partition, segment and field IDs and, after the
// two timestamps, the payload type.
const (
	descCollection  = 4 + 17
	descPartition   = descCollection + 8
	descSegment     = descCollection + 16
	descField       = descCollection + 24
	descPayloadType = descCollection + 48
)

// corruptFixture generates a small collection (seed) into store and a host
// over it.
func corruptFixture(t *testing.T, store objstore.Store, seed int64) (gen.Config, *gen.Collection, *Host) {
	t.Helper()
	cfg := smallGen(seed)
	return cfg, generate(t, store, cfg), newTestHost(t, store, 0, nil)
}

// rewrite replaces the object under key with mut applied to its bytes and
// returns a function that puts the original back.
func rewrite(t *testing.T, store objstore.Store, key string, mut func([]byte) []byte) (restore func()) {
	t.Helper()
	orig := objstoretest.ReadAll(t, store, key)
	put := func(b []byte) {
		if err := store.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	put(mut(bytes.Clone(orig)))
	return func() { put(orig) }
}

func setInt64(off int, v int64) func([]byte) []byte {
	return func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[off:], uint64(v))
		return b
	}
}

// TestCompactRefusesMisfiledBinlogs: an insert binlog or deltalog whose
// descriptor names another collection, partition, segment or field, or
// another payload type, than the plan and schema fails the task with an
// error naming the object and both values, marked corrupt.Err; nothing is
// written and the inputs are left as they are. They used to be read as the
// plan's segment and field.
func TestCompactRefusesMisfiledBinlogs(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		cfg, col, h := corruptFixture(t, store, 21)
		seg := col.MixPlan.GetSegmentBinlogs()[1]
		segID := seg.GetSegmentID()
		insertKey := milvuspath.InsertLog(DefaultRootPath, cfg.CollectionID, cfg.PartitionID, segID, gen.VectorField,
			firstLogID(t, seg.GetFieldBinlogs(), gen.VectorField))
		deltaKey := milvuspath.DeltaLog(DefaultRootPath, cfg.CollectionID, cfg.PartitionID, segID,
			firstLogID(t, seg.GetDeltalogs(), 0))
		l0 := segmentOfLevel(t, col.L0Plan, datapb.SegmentLevel_L0, true)
		l0Key := milvuspath.DeltaLog(DefaultRootPath, cfg.CollectionID, l0.GetPartitionID(), l0.GetSegmentID(),
			firstLogID(t, l0.GetDeltalogs(), 0))
		for _, c := range []struct {
			name string
			l0   bool
			key  string
			mut  func([]byte) []byte
			want string
		}{
			{"insert segment", false, insertKey, setInt64(descSegment, 17654435772432484),
				fmt.Sprintf("descriptor says segment 17654435772432484, plan says %d", segID)},
			{"insert collection", false, insertKey, setInt64(descCollection, 7),
				fmt.Sprintf("descriptor says collection 7, plan says %d", cfg.CollectionID)},
			{"insert partition", false, insertKey, setInt64(descPartition, -1),
				fmt.Sprintf("descriptor says partition -1, plan says %d", cfg.PartitionID)},
			{"insert field", false, insertKey, setInt64(descField, 4096),
				"descriptor says field 4096, plan says field 101 (embedding)"},
			{"insert payload type", false, insertKey, func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[descPayloadType:], uint32(schemapb.DataType_BinaryVector))
				return b
			}, "descriptor says payload type BinaryVector, plan says field 101 (embedding) is FloatVector"},
			{"deltalog segment", false, deltaKey, setInt64(descSegment, segID+1),
				fmt.Sprintf("descriptor says segment %d, plan says %d", segID+1, segID)},
			{"L0 deltalog segment", true, l0Key, setInt64(descSegment, 100),
				fmt.Sprintf("descriptor says segment 100, plan says %d", l0.GetSegmentID())},
			{"L0 deltalog partition", true, l0Key, setInt64(descPartition, 5),
				fmt.Sprintf("descriptor says partition 5, plan says %d", l0.GetPartitionID())},
		} {
			t.Run(c.name, func(t *testing.T) {
				restore := rewrite(t, store, c.key, c.mut)
				defer restore()
				before := snapshot(t, store)
				plan, opt := col.MixPlan, Native(mixstrategy.New())
				if c.l0 {
					plan, opt = col.L0Plan, Native(l0strategy.New())
				}
				_, err := h.Compact(ctx, plan, opt)
				expectCleanFailure(t, h, store, before, err, corrupt.Err, "read")
				if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %q does not name %s and %q", err, c.key, c.want)
				}
			})
		}
		// The untouched collection compacts (generated binlogs carry the real IDs).
		if _, err := h.Compact(ctx, col.MixPlan, Native(mixstrategy.New())); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Compact(ctx, col.L0Plan, Native(l0strategy.New())); err != nil {
			t.Fatal(err)
		}
	})
}

// TestL0CorruptStatsLog: a target's stats log whose bloom filter does not
// decode (one base64 character flipped) fails the L0 task with an error
// naming the object, marked corrupt.Err, and writes nothing. It used to
// become an always-true filter that routed deletes to every target.
func TestL0CorruptStatsLog(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T, store objstore.Store) {
		ctx := context.Background()
		cfg, col, h := corruptFixture(t, store, 22)
		target := segmentOfLevel(t, col.L0Plan, datapb.SegmentLevel_L0, false)
		key := milvuspath.StatsLog(DefaultRootPath, cfg.CollectionID, cfg.PartitionID, target.GetSegmentID(), gen.PKField,
			firstLogID(t, target.GetField2StatslogPaths(), gen.PKField))
		for name, mut := range map[string]func([]byte) []byte{
			"flipped": func(b []byte) []byte {
				at := bytes.Index(b, []byte(`"b":["`)) + 6 + 10
				b[at] = '+'
				return b
			},
			"truncated block": func(b []byte) []byte {
				at := bytes.Index(b, []byte(`"b":["`)) + 6
				return append(b[:at:at], b[at+4:]...)
			},
		} {
			t.Run(name, func(t *testing.T) {
				restore := rewrite(t, store, key, mut)
				defer restore()
				before := snapshot(t, store)
				_, err := h.Compact(ctx, col.L0Plan, Native(l0strategy.New()))
				expectCleanFailure(t, h, store, before, err, corrupt.Err, "read")
				if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), `key "bf": BlockedBloomFilter body`) {
					t.Fatalf("error %q does not name %s and the filter", err, key)
				}
			})
		}
	})
}

// firstLogID is the logID of the first binlog listed for field.
func firstLogID(t *testing.T, fbs []*datapb.FieldBinlog, field int64) int64 {
	t.Helper()
	for _, fb := range fbs {
		if fb.GetFieldID() == field && len(fb.GetBinlogs()) > 0 {
			return fb.GetBinlogs()[0].GetLogID()
		}
	}
	t.Fatalf("no binlog listed for field %d", field)
	return 0
}

// segmentOfLevel is the plan's first segment of level (is) or of another
// level (!is).
func segmentOfLevel(t *testing.T, plan *datapb.CompactionPlan, level datapb.SegmentLevel, is bool) *datapb.CompactionSegmentBinlogs {
	t.Helper()
	for _, s := range plan.GetSegmentBinlogs() {
		if (s.GetLevel() == level) == is {
			return s
		}
	}
	t.Fatalf("plan %d has no segment of the level wanted", plan.GetPlanID())
	return nil
}
