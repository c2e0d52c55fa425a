// Package pipeline is the compaction pipeline behind host.Compact: plan
// validation, the task document, the read stage feeding a strategy, the
// decisions applied by the write stage, and cleanup on failure. It knows
// the strategy only through the Guest interface, so the wasm instance and a
// natively linked strategy run the identical flow.
package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/storage/packed"
	"github.com/compacthost/compacthost/storage/tso"
)

// ErrInvalidPlan is wrapped by every plan validation error.
var ErrInvalidPlan = errors.New("invalid compaction plan")

// Defaults of the plan's json_params (milvus-formats.md §3.1, §13).
const (
	DefaultBinlogMaxSize       = 64 << 20
	DefaultUseMergeSort        = true
	DefaultMaxSegmentMergeSort = 30
	DefaultBFApplyBatchSize    = 10000
)

// Params are the plan's json_params this host reads.
type Params struct {
	StorageVersion      int64
	BinlogMaxSize       int64
	UseMergeSort        bool
	MaxSegmentMergeSort int
	BFApplyBatchSize    int
}

// rawParams mirrors Milvus's compaction.Params; pointers tell absent keys
// from zero values.
type rawParams struct {
	StorageVersion      *int64 `json:"storage_version"`
	BinlogMaxSize       *int64 `json:"binlog_max_size"`
	UseMergeSort        *bool  `json:"use_merge_sort"`
	MaxSegmentMergeSort *int   `json:"max_segment_merge_sort"`
	BFApplyBatchSize    *int   `json:"bloom_filter_apply_batch_size"`
}

// ParseParams reads json_params; an empty string gives the defaults.
func ParseParams(s string) (Params, error) {
	p := Params{BinlogMaxSize: DefaultBinlogMaxSize, UseMergeSort: DefaultUseMergeSort,
		MaxSegmentMergeSort: DefaultMaxSegmentMergeSort, BFApplyBatchSize: DefaultBFApplyBatchSize}
	if len(bytes.TrimSpace([]byte(s))) == 0 {
		return p, nil
	}
	var r rawParams
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return p, fmt.Errorf("json_params: %w", err)
	}
	if r.StorageVersion != nil {
		p.StorageVersion = *r.StorageVersion
	}
	if r.BinlogMaxSize != nil {
		if *r.BinlogMaxSize <= 0 {
			return p, fmt.Errorf("json_params: binlog_max_size %d must be > 0", *r.BinlogMaxSize)
		}
		p.BinlogMaxSize = *r.BinlogMaxSize
	}
	if r.UseMergeSort != nil {
		p.UseMergeSort = *r.UseMergeSort
	}
	if r.MaxSegmentMergeSort != nil {
		p.MaxSegmentMergeSort = *r.MaxSegmentMergeSort
	}
	if r.BFApplyBatchSize != nil && *r.BFApplyBatchSize > 0 {
		p.BFApplyBatchSize = *r.BFApplyBatchSize
	}
	if !packed.KnownSegmentVersion(p.StorageVersion) {
		return p, fmt.Errorf("json_params: storage_version %d is not supported (this host writes 0 = storage v1 and 2 = storage v2)", p.StorageVersion)
	}
	return p, nil
}

// OutputVersion is the storage version of the outputs: override when it
// is 1 (v1) or 2 (v2), else what json_params asks (2 is v2, anything else
// v1). The result is packed.SegmentV1 (0) or packed.SegmentV2, as Milvus's
// Go code and CompactionSegment.storage_version number them.
func (p Params) OutputVersion(override int64) int64 {
	v := p.StorageVersion
	if override != 0 {
		v = override
	}
	if v == packed.SegmentV2 {
		return packed.SegmentV2
	}
	return packed.SegmentV1
}

// Plan is a validated plan with what the flows derive from it.
type Plan struct {
	*datapb.CompactionPlan
	Type    string // abi.CompactionMix or abi.CompactionL0
	PK      *schemapb.FieldSchema
	PKType  abi.Type
	Params  Params
	NowMs   int64
	Sorted  bool // mix: merge-sort order (every input sorted, 2 <= N <= max_segment_merge_sort)
	CollID  int64
	PartID  int64
	Targets []int // L0: indexes of the target segments
	L0Segs  []int // L0: indexes of the L0 segments
}

// NowMs is the plan's start time in Unix milliseconds: the physical part
// of start_time read as a hybrid timestamp, or start_time as Unix seconds
// when it is not a valid hybrid timestamp.
func NowMs(start int64) int64 {
	if start > 0 && tso.Valid(uint64(start)) {
		return tso.Physical(uint64(start))
	}
	return start * 1000
}

// Validate checks plan the way Milvus's DataNode does before compacting
// (milvus-formats.md §3.1, §4.1, §5.1), and more, since a plan is
// untrusted: positive IDs, no segment or object listed twice, no negative
// sizes, output ranges that hold no input ID and fit the worst case
// (checkOutputRanges), and nothing the pipeline does not support yet
// (checkSupported). Every error wraps ErrInvalidPlan and names the plan.
// plan is not modified.
func Validate(plan *datapb.CompactionPlan) (*Plan, error) {
	if plan == nil {
		return nil, fmt.Errorf("%w: nil plan", ErrInvalidPlan)
	}
	bad := func(format string, args ...any) (*Plan, error) {
		return nil, fmt.Errorf("%w: plan %d: %s", ErrInvalidPlan, plan.GetPlanID(), fmt.Sprintf(format, args...))
	}
	p := &Plan{CompactionPlan: plan, NowMs: NowMs(plan.GetStartTime())}
	switch plan.GetType() {
	case datapb.CompactionType_MixCompaction:
		p.Type = abi.CompactionMix
	case datapb.CompactionType_Level0DeleteCompaction:
		p.Type = abi.CompactionL0
	default:
		return bad("compaction type %s is not supported (want MixCompaction or Level0DeleteCompaction)", plan.GetType())
	}
	segs := plan.GetSegmentBinlogs()
	if len(segs) == 0 {
		return bad("no segments")
	}
	for i, s := range segs {
		if s == nil {
			return bad("segment %d is nil", i)
		}
	}
	// begin_logID is deprecated and unused here; Milvus's DataNode still
	// refuses 0, and DataCoord sets it to pre_allocated_logIDs.begin.
	if plan.GetBeginLogID() == 0 {
		return bad("begin_logID is 0")
	}
	if plan.GetBeginLogID() < 0 {
		return bad("begin_logID %d is negative", plan.GetBeginLogID())
	}
	if err := checkRange("pre_allocated_logIDs", plan.GetPreAllocatedLogIDs()); err != nil {
		return bad("%v", err)
	}
	var err error
	if p.Params, err = ParseParams(plan.GetJsonParams()); err != nil {
		return bad("%v", err)
	}
	if p.PK, err = pkField(plan.GetSchema()); err != nil {
		return bad("%v", err)
	}
	p.PKType = abi.TypeInt64
	if p.PK.GetDataType() == schemapb.DataType_VarChar {
		p.PKType = abi.TypeString
	}
	if err := checkSupported(plan); err != nil {
		return bad("%v", err)
	}
	if err := checkSegmentIDs(plan); err != nil {
		return bad("%v", err)
	}
	in, err := collectLogs(plan)
	if err != nil {
		return bad("%v", err)
	}
	p.CollID, p.PartID = segs[0].GetCollectionID(), segs[0].GetPartitionID()
	if p.Type == abi.CompactionMix {
		err = validateMix(p, bad)
	} else {
		err = validateL0(p, bad)
	}
	if err != nil {
		return nil, err
	}
	if err := checkOutputRanges(p, in); err != nil {
		return bad("%v", err)
	}
	return p, nil
}

func validateMix(p *Plan, bad func(string, ...any) (*Plan, error)) error {
	if err := checkRange("pre_allocated_segmentIDs", p.GetPreAllocatedSegmentIDs()); err != nil {
		_, err = bad("mix compaction needs output segment IDs: %v", err)
		return err
	}
	if p.GetMaxSize() <= 0 {
		_, err := bad("max_size is %d, must be > 0", p.GetMaxSize())
		return err
	}
	if ts := fieldByID(p.GetSchema(), abi.FieldIDTimestamp); ts == nil || ts.GetDataType() != schemapb.DataType_Int64 {
		_, err := bad("schema has no Int64 Timestamp field (ID 1)")
		return err
	}
	segs := p.GetSegmentBinlogs()
	allSorted, anyLogs := true, false
	for _, s := range segs {
		if s.GetLevel() == datapb.SegmentLevel_L0 {
			_, err := bad("segment %d is an L0 segment; a mix compaction takes only L1/L2 segments", s.GetSegmentID())
			return err
		}
		if s.GetCollectionID() != p.CollID || s.GetPartitionID() != p.PartID {
			_, err := bad("segment %d is in collection %d partition %d, segment %d in collection %d partition %d",
				s.GetSegmentID(), s.GetCollectionID(), s.GetPartitionID(), segs[0].GetSegmentID(), p.CollID, p.PartID)
			return err
		}
		allSorted = allSorted && s.GetIsSorted()
		for _, fb := range s.GetFieldBinlogs() {
			anyLogs = anyLogs || len(fb.GetBinlogs()) > 0
		}
	}
	if !anyLogs {
		_, err := bad("no input segment has insert binlogs (illegal compaction plan)")
		return err
	}
	n := len(segs)
	p.Sorted = p.Params.UseMergeSort && allSorted && n >= 2 && n <= p.Params.MaxSegmentMergeSort
	return nil
}

func validateL0(p *Plan, bad func(string, ...any) (*Plan, error)) error {
	for i, s := range p.GetSegmentBinlogs() {
		if s.GetCollectionID() != p.CollID {
			_, err := bad("segment %d is in collection %d, segment %d in collection %d",
				s.GetSegmentID(), s.GetCollectionID(), p.GetSegmentBinlogs()[0].GetSegmentID(), p.CollID)
			return err
		}
		if s.GetLevel() == datapb.SegmentLevel_L0 {
			p.L0Segs = append(p.L0Segs, i)
		} else {
			p.Targets = append(p.Targets, i)
		}
	}
	if len(p.L0Segs) == 0 {
		_, err := bad("L0 compaction without L0 segments")
		return err
	}
	if len(p.Targets) == 0 {
		_, err := bad("L0 compaction without target segments (every segment is L0)")
		return err
	}
	return nil
}

// pkField returns the schema's single primary key, which must be Int64 or
// VarChar.
func pkField(schema *schemapb.CollectionSchema) (*schemapb.FieldSchema, error) {
	if schema == nil {
		return nil, errors.New("no schema")
	}
	var pk *schemapb.FieldSchema
	for _, f := range schema.GetFields() {
		if f.GetIsPrimaryKey() {
			if pk != nil {
				return nil, fmt.Errorf("schema has two primary keys, fields %d and %d", pk.GetFieldID(), f.GetFieldID())
			}
			pk = f
		}
	}
	if pk == nil {
		return nil, errors.New("schema has no primary key field")
	}
	if t := pk.GetDataType(); t != schemapb.DataType_Int64 && t != schemapb.DataType_VarChar {
		return nil, fmt.Errorf("primary key field %d (%s) is %s, want Int64 or VarChar", pk.GetFieldID(), pk.GetName(), t)
	}
	return pk, nil
}

func fieldByID(schema *schemapb.CollectionSchema, id int64) *schemapb.FieldSchema {
	for _, f := range schema.GetFields() {
		if f.GetFieldID() == id {
			return f
		}
	}
	return nil
}

// MaxOutputs is the number of output segment IDs the plan pre-allocated,
// capped to the ABI's u32.
func MaxOutputs(plan *datapb.CompactionPlan) uint32 {
	r := plan.GetPreAllocatedSegmentIDs()
	n := r.GetEnd() - r.GetBegin()
	if n <= 0 {
		return 0
	}
	return uint32(min(n, math.MaxUint32))
}
