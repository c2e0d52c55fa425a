package pipeline

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/packed"
)

// allPartitionsID is the partition ID of an L0 segment whose deletes apply
// to every partition of its channel (Milvus's common.AllPartitionsID).
const allPartitionsID = -1

// checkSupported refuses what the pipeline cannot honour yet: it would
// drop data (BM25 stats, struct sub-fields), read bytes it cannot decode
// (storage v2, encrypted binlogs) or ignore binlogs. Each reason starts with
// "not supported yet".
func checkSupported(plan *datapb.CompactionPlan) error {
	if kv := plan.GetPluginContext(); len(kv) > 0 {
		// Only the keys: a value can be an encryption key.
		keys := make([]string, len(kv))
		for i, p := range kv {
			keys[i] = strconv.Quote(p.GetKey())
		}
		return fmt.Errorf("not supported yet: plugin_context (keys %v): binlogs of an encryption zone need a cipher plugin this host does not have", keys)
	}
	schema := plan.GetSchema()
	if sa := schema.GetStructArrayFields(); len(sa) > 0 {
		return fmt.Errorf("not supported yet: schema has %d struct_array_fields (first: %d %q); their sub-field binlogs would be dropped",
			len(sa), sa[0].GetFieldID(), sa[0].GetName())
	}
	for _, f := range schema.GetFunctions() {
		if f.GetType() == schemapb.FunctionType_BM25 {
			return fmt.Errorf("not supported yet: BM25 function %q (outputs %v): its output segments need BM25 stats logs this host does not write",
				f.GetName(), f.GetOutputFieldNames())
		}
	}
	for _, s := range plan.GetSegmentBinlogs() {
		if v := s.GetStorageVersion(); !packed.KnownSegmentVersion(v) {
			return fmt.Errorf("not supported: segment %d has storage_version %d; this host reads 0 or 1 (storage v1) and 2 (storage v2)", s.GetSegmentID(), v)
		}
		// A newer DataCoord's field (a storage-v3 manifest path, say)
		// changes how the segment is read: refuse rather than ignore it.
		if u := unknownFieldNumbers(s.ProtoReflect().GetUnknown()); len(u) > 0 {
			return fmt.Errorf("not supported: segment %d carries protobuf fields %v that this build does not know; reading it without them could misread its data", s.GetSegmentID(), u)
		}
	}
	return nil
}

// unknownFieldNumbers lists the field numbers in raw unknown-field bytes.
func unknownFieldNumbers(b []byte) []protowire.Number {
	var nums []protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return append(nums, -1)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return append(nums, num)
		}
		b = b[m:]
		if !slices.Contains(nums, num) {
			nums = append(nums, num)
		}
	}
	return nums
}

// checkSegmentIDs refuses non-positive collection, partition and segment
// IDs (an L0 segment may name every partition with -1) and a segment
// listed twice.
func checkSegmentIDs(plan *datapb.CompactionPlan) error {
	seen := make(map[int64]int, len(plan.GetSegmentBinlogs()))
	for i, s := range plan.GetSegmentBinlogs() {
		id := s.GetSegmentID()
		switch {
		case id <= 0:
			return fmt.Errorf("segment entry %d has segment ID %d, want > 0", i, id)
		case s.GetCollectionID() <= 0:
			return fmt.Errorf("segment %d has collection ID %d, want > 0", id, s.GetCollectionID())
		case s.GetPartitionID() <= 0 && !(s.GetLevel() == datapb.SegmentLevel_L0 && s.GetPartitionID() == allPartitionsID):
			return fmt.Errorf("segment %d has partition ID %d, want > 0 (or %d for an L0 segment)", id, s.GetPartitionID(), allPartitionsID)
		}
		if j, dup := seen[id]; dup {
			return fmt.Errorf("segment %d is listed twice (segment entries %d and %d); its rows would be compacted twice", id, j, i)
		}
		seen[id] = i
	}
	return nil
}

// inputLog is one log object a plan names.
type inputLog struct {
	seg   int64
	kind  milvuspath.Kind
	field int64
	id    int64
	ref   string // how errors name it: the log_path, or the logID
}

// inputs is what the plan's input logs tell Validate: their IDs, for the
// output ranges, and the bytes of the insert binlogs, for the worst case.
type inputs struct {
	logs        []inputLog
	insertBytes int64 // Σ memory_size × the field's expansion ratio over the insert binlogs, saturated
}

// collectLogs checks every input log's metadata: an ID (logID, or the
// last element of log_path when logID is 0; both must agree when both are
// set), no negative entries_num/log_size/memory_size, insert binlogs only
// of schema fields, and no object listed twice: the same log ID twice
// within one segment and kind, or the same key anywhere in the plan.
//
// The schema DataCoord sends holds the system fields RowID (0) and
// Timestamp (1): RootCoord appends them and only the proxy hides them
// from users. So do gen's schemas; their binlogs pass the field check.
// Milvus 2.6's CompactionSegmentBinlogs carries no BM25 logs (and BM25
// collections are refused), so there are three kinds of input log.
func collectLogs(plan *datapb.CompactionPlan) (*inputs, error) {
	in := &inputs{}
	keys := map[string]string{}
	for _, s := range plan.GetSegmentBinlogs() {
		seen := map[milvuspath.Kind]map[int64]string{}
		for _, g := range []struct {
			kind milvuspath.Kind
			fbs  []*datapb.FieldBinlog
		}{
			{milvuspath.KindInsert, s.GetFieldBinlogs()},
			{milvuspath.KindStats, s.GetField2StatslogPaths()},
			{milvuspath.KindDelta, s.GetDeltalogs()},
		} {
			seen[g.kind] = map[int64]string{}
			for _, fb := range g.fbs {
				if fb == nil {
					return nil, fmt.Errorf("segment %d: nil %s entry", s.GetSegmentID(), g.kind)
				}
				ratio := int64(1)
				if g.kind == milvuspath.KindInsert {
					var err error
					if ratio, err = insertRatio(plan.GetSchema(), s, fb); err != nil {
						return nil, err
					}
				}
				for _, b := range fb.GetBinlogs() {
					l, err := checkLog(s, g.kind, fb.GetFieldID(), b)
					if err != nil {
						return nil, err
					}
					if prev, dup := seen[g.kind][l.id]; dup {
						return nil, fmt.Errorf("segment %d lists %s ID %d twice (%s and %s)", s.GetSegmentID(), g.kind, l.id, prev, l.ref)
					}
					seen[g.kind][l.id] = l.ref
					key := logKey(s, l, b.GetLogPath())
					if prev, dup := keys[key]; dup {
						return nil, fmt.Errorf("segment %d %s %s names object %s, already listed as %s", s.GetSegmentID(), g.kind, l.ref, key, prev)
					}
					keys[key] = fmt.Sprintf("segment %d %s %s", s.GetSegmentID(), g.kind, l.ref)
					in.logs = append(in.logs, l)
					if g.kind == milvuspath.KindInsert {
						in.insertBytes = satAdd(in.insertBytes, satMul(b.GetMemorySize(), ratio))
					}
				}
			}
		}
	}
	return in, nil
}

// insertRatio checks that an insert FieldBinlog holds only schema fields
// (a field outside the schema would be dropped) and returns the most its
// bytes can grow as the writer counts chunks (an Array<Int64> counts 8x
// its memory_size: binlog.ExpansionRatio). A v1 FieldBinlog is one field;
// a v2 one is a column group whose child_fields name its fields, or, in
// legacy metadata without child_fields, whatever its files say, so every
// schema field is assumed.
func insertRatio(schema *schemapb.CollectionSchema, s *datapb.CompactionSegmentBinlogs, fb *datapb.FieldBinlog) (int64, error) {
	if s.GetStorageVersion() != packed.SegmentV2 {
		f := fieldByID(schema, fb.GetFieldID())
		if f == nil {
			return 0, fmt.Errorf("not supported yet: segment %d has insert binlogs of field %d, which the schema does not have; they would be dropped",
				s.GetSegmentID(), fb.GetFieldID())
		}
		return binlog.ExpansionRatio(f), nil
	}
	fields := schema.GetFields()
	if children := fb.GetChildFields(); len(children) > 0 {
		fields = make([]*schemapb.FieldSchema, 0, len(children))
		for _, id := range children {
			f := fieldByID(schema, id)
			if f == nil {
				return 0, fmt.Errorf("not supported yet: segment %d column group %d holds field %d, which the schema does not have; it would be dropped",
					s.GetSegmentID(), fb.GetFieldID(), id)
			}
			fields = append(fields, f)
		}
	}
	ratio := int64(1)
	for _, f := range fields {
		ratio = max(ratio, binlog.ExpansionRatio(f))
	}
	return ratio, nil
}

// checkLog returns one binlog's identity after checking its metadata.
func checkLog(s *datapb.CompactionSegmentBinlogs, kind milvuspath.Kind, field int64, b *datapb.Binlog) (inputLog, error) {
	if b == nil {
		return inputLog{}, fmt.Errorf("segment %d field %d: nil %s entry", s.GetSegmentID(), field, kind)
	}
	l := inputLog{seg: s.GetSegmentID(), kind: kind, field: field, id: b.GetLogID(), ref: fmt.Sprintf("logID %d", b.GetLogID())}
	where := func() string { return fmt.Sprintf("segment %d field %d %s %s", s.GetSegmentID(), field, kind, l.ref) }
	p := b.GetLogPath()
	if p != "" {
		l.ref = strconv.Quote(p)
		fromPath, err := strconv.ParseInt(path.Base(p), 10, 64)
		switch {
		case l.id < 0:
			return l, fmt.Errorf("%s: negative logID %d", where(), l.id)
		case l.id == 0 && (err != nil || fromPath <= 0):
			return l, fmt.Errorf("%s: logID is 0 and the path does not end in a log ID", where())
		case l.id == 0:
			l.id = fromPath
		case err != nil || fromPath != l.id:
			return l, fmt.Errorf("%s: logID %d does not match the path's last element", where(), l.id)
		}
	} else if l.id <= 0 {
		return l, fmt.Errorf("%s: no log_path and logID %d, want > 0", where(), l.id)
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"entries_num", b.GetEntriesNum()}, {"log_size", b.GetLogSize()}, {"memory_size", b.GetMemorySize()}} {
		if n.v < 0 {
			return l, fmt.Errorf("%s: negative %s %d", where(), n.name, n.v)
		}
	}
	return l, nil
}

// logKey is the object key a binlog resolves to, without the root path,
// so that a full log_path and a logID-only entry of the same object
// compare equal. A path that is not a Milvus log key is its own key.
func logKey(s *datapb.CompactionSegmentBinlogs, l inputLog, logPath string) string {
	if logPath != "" {
		k, err := milvuspath.Parse(logPath)
		if err != nil {
			return logPath
		}
		k.Root = ""
		return k.String()
	}
	field := l.field
	if !l.kind.HasField() {
		field = 0
	}
	return milvuspath.Key{Kind: l.kind, CollectionID: s.GetCollectionID(), PartitionID: s.GetPartitionID(),
		SegmentID: s.GetSegmentID(), FieldID: field, LogID: l.id}.String()
}

// satAdd and satMul add and multiply non-negative int64s, stopping at
// math.MaxInt64: the plan's sizes are untrusted.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
