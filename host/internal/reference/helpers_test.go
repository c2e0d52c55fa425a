package reference

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/objstore"
	"github.com/compacthost/compacthost/storage/statslog"
)

// The helpers below stand in for a compaction pipeline in these tests: they
// write a reference result to the store the way a Milvus compactor would
// (one insert log per field per output, a pk stats log, a JSON deltalog per
// L0 target) and return the CompactionPlanResult describing it.

const outSegBase, outLogBase = 900_000, 800_000

func put(t *testing.T, store objstore.Store, key string, data []byte) {
	t.Helper()
	if err := store.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// writeMixResult writes res's outputs as segments outSegBase+i.
func writeMixResult(t *testing.T, store objstore.Store, root string, plan *datapb.CompactionPlan, res *MixResult) *datapb.CompactionPlanResult {
	t.Helper()
	in := plan.GetSegmentBinlogs()[0]
	coll, part := in.GetCollectionID(), in.GetPartitionID()
	pkf, pki, err := pkField(plan.GetSchema())
	if err != nil {
		t.Fatal(err)
	}
	out := &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed,
		Channel: plan.GetChannel(), Type: plan.GetType()}
	logID := int64(outLogBase)
	for i, o := range res.Outputs {
		seg := &datapb.CompactionSegment{SegmentID: outSegBase + int64(i), NumOfRows: int64(len(o.Rows)),
			Channel: plan.GetChannel(), IsSorted: res.Sorted}
		for fi, f := range res.Fields {
			vals := make([]any, len(o.Rows))
			for r, row := range o.Rows {
				vals[r] = row.Values[fi]
			}
			col := buildArray(t, f, vals)
			key := milvuspath.InsertLog(root, coll, part, seg.SegmentID, f.GetFieldID(), logID)
			var buf bytes.Buffer
			w, err := binlog.EncodeInsert(&buf, binlog.Descriptor{CollectionID: coll, PartitionID: part,
				SegmentID: seg.SegmentID, FieldID: f.GetFieldID(), PayloadType: f.GetDataType()}, f, col, binlog.WriterOptions{})
			col.Release()
			if err != nil {
				t.Fatal(err)
			}
			put(t, store, key, buf.Bytes())
			seg.InsertLogs = append(seg.InsertLogs, &datapb.FieldBinlog{FieldID: f.GetFieldID(), Binlogs: []*datapb.Binlog{{
				EntriesNum: int64(len(o.Rows)), LogPath: key, LogID: logID, LogSize: int64(buf.Len()), MemorySize: w.MemorySize}}})
			logID++
		}
		b, err := statslog.NewBuilder(pkf.GetFieldID(), pkf.GetDataType(), len(o.Rows))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range o.Rows {
			switch pk := row.Values[pki].(type) {
			case int64:
				b.AddInt64(pk)
			case string:
				b.AddVarChar(pk)
			}
		}
		st, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		data, err := statslog.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		key := milvuspath.StatsLog(root, coll, part, seg.SegmentID, pkf.GetFieldID(), logID)
		logID++
		put(t, store, key, data)
		seg.Field2StatslogPaths = []*datapb.FieldBinlog{{FieldID: pkf.GetFieldID(), Binlogs: []*datapb.Binlog{{
			EntriesNum: int64(len(o.Rows)), LogPath: key, LogSize: int64(len(data)), MemorySize: int64(len(data))}}}}
		out.Segments = append(out.Segments, seg)
	}
	if len(res.Outputs) == 0 {
		out.Segments = []*datapb.CompactionSegment{{SegmentID: outSegBase, Channel: plan.GetChannel()}}
	}
	return out
}

// buildArray builds the Arrow column of field f from canonical values.
func buildArray(t *testing.T, f *schemapb.FieldSchema, vals []any) arrow.Array {
	t.Helper()
	typ, err := binlog.ArrowType(f)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewBuilder(memory.DefaultAllocator, typ)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch x := b.(type) {
		case *array.BooleanBuilder:
			x.Append(v.(bool))
		case *array.Int8Builder:
			x.Append(v.(int8))
		case *array.Int16Builder:
			x.Append(v.(int16))
		case *array.Int32Builder:
			x.Append(v.(int32))
		case *array.Int64Builder:
			x.Append(v.(int64))
		case *array.Float32Builder:
			x.Append(v.(float32))
		case *array.Float64Builder:
			x.Append(v.(float64))
		case *array.StringBuilder:
			x.Append(v.(string))
		case *array.BinaryBuilder:
			x.Append(v.([]byte))
		case *array.FixedSizeBinaryBuilder:
			x.Append(v.([]byte))
		default:
			t.Fatalf("no builder for %s", typ)
		}
	}
	return b.NewArray()
}

// writeL0Result writes one JSON deltalog per target of res.
func writeL0Result(t *testing.T, store objstore.Store, root string, plan *datapb.CompactionPlan, res *L0Result) *datapb.CompactionPlanResult {
	t.Helper()
	parts := map[int64][2]int64{}
	for _, s := range plan.GetSegmentBinlogs() {
		parts[s.GetSegmentID()] = [2]int64{s.GetCollectionID(), s.GetPartitionID()}
	}
	out := &datapb.CompactionPlanResult{PlanID: plan.GetPlanID(), State: datapb.CompactionTaskState_completed,
		Channel: plan.GetChannel(), Type: plan.GetType()}
	for i, id := range res.Order {
		d := &deltalog.Deletes{}
		for _, r := range res.Targets[id] {
			var err error
			switch pk := r.PK.(type) {
			case int64:
				err = d.AppendInt64(pk, r.TS)
			case string:
				err = d.AppendVarChar(pk, r.TS)
			default:
				err = fmt.Errorf("pk %T", r.PK)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		cp := parts[id]
		logID := int64(outLogBase + i)
		key := milvuspath.DeltaLog(root, cp[0], cp[1], id, logID)
		var buf bytes.Buffer
		w, err := deltalog.Write(&buf, deltalog.Meta{CollectionID: cp[0], PartitionID: cp[1], SegmentID: id}, d, deltalog.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		put(t, store, key, buf.Bytes())
		out.Segments = append(out.Segments, &datapb.CompactionSegment{SegmentID: id, Channel: plan.GetChannel(),
			Deltalogs: []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{EntriesNum: w.Rows, LogPath: key, LogID: logID,
				LogSize: w.Bytes, MemorySize: w.MemorySize, TimestampFrom: w.MinTS, TimestampTo: w.MaxTS}}}}})
	}
	return out
}

// cloneMix deep-copies the rows of r so a test can tamper with them.
func cloneMix(r *MixResult) *MixResult {
	c := *r
	c.Outputs = nil
	for _, o := range r.Outputs {
		oc := *o
		oc.Rows = make([]Row, len(o.Rows))
		for i, row := range o.Rows {
			row.Values = append([]any(nil), row.Values...)
			oc.Rows[i] = row
		}
		c.Outputs = append(c.Outputs, &oc)
	}
	return &c
}
