package pipeline

import (
	"fmt"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/abiarrow"
	"github.com/compacthost/compacthost/storage/binlog"
)

// ResolveColumns turns a manifest's field selectors into the task's
// rows-batch columns (ABI.md §6): in the order listed, duplicates removed.
// A selector naming no field of the schema is an error naming it.
func ResolveColumns(schema *schemapb.CollectionSchema, pk *schemapb.FieldSchema, selectors []string) ([]abi.ColumnInfo, error) {
	var cols []abi.ColumnInfo
	seen := map[int64]bool{}
	for _, sel := range selectors {
		var f *schemapb.FieldSchema
		switch sel {
		case abi.FieldRowSize:
			if !seen[abi.FieldIDRowSize] {
				seen[abi.FieldIDRowSize] = true
				cols = append(cols, abi.ColumnInfo{FieldID: abi.FieldIDRowSize, Name: abi.FieldRowSize, Type: abi.TypeUint32})
			}
			continue
		case abi.FieldPK:
			f = pk
		case abi.FieldTS:
			f = fieldByID(schema, abi.FieldIDTimestamp)
		case abi.FieldRowID:
			f = fieldByID(schema, abi.FieldIDRowID)
		case "$meta":
			for _, g := range schema.GetFields() {
				if g.GetIsDynamic() {
					f = g
				}
			}
		default:
			if id, err := strconv.ParseInt(sel, 10, 64); err == nil {
				f = fieldByID(schema, id)
			} else {
				for _, g := range schema.GetFields() {
					if g.GetName() == sel {
						f = g
					}
				}
			}
		}
		if f == nil {
			return nil, fmt.Errorf("field selector %q names no field of the collection schema", sel)
		}
		if seen[f.GetFieldID()] {
			continue
		}
		seen[f.GetFieldID()] = true
		c, err := columnInfo(f)
		if err != nil {
			return nil, fmt.Errorf("field selector %q: %w", sel, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// columnInfo describes a schema field as an ABI column, by the Arrow type
// the binlog reader decodes it to.
func columnInfo(f *schemapb.FieldSchema) (abi.ColumnInfo, error) {
	c := abi.ColumnInfo{FieldID: f.GetFieldID(), Name: f.GetName(), Nullable: f.GetNullable(), DataType: int32(f.GetDataType())}
	at, err := binlog.ArrowType(f)
	if err != nil {
		return c, err
	}
	if c.Type, c.Width, err = abiarrow.TypeOf(at); err != nil {
		return c, fmt.Errorf("field %d (%s) of type %s decodes to Arrow %s, which has no ABI column type", f.GetFieldID(), f.GetName(), f.GetDataType(), at)
	}
	return c, nil
}

// maxVarBytes bounds the bytes per row of a variable-width column for
// max_batch_bytes: a VarChar's max_length, else 64 KiB.
func maxVarBytes(f *schemapb.FieldSchema) uint64 {
	for _, kv := range f.GetTypeParams() {
		if kv.GetKey() == "max_length" {
			if n, err := strconv.ParseUint(kv.GetValue(), 10, 32); err == nil && n > 0 {
				return n
			}
		}
	}
	return 64 << 10
}

func align8(n uint64) uint64 { return (n + 7) &^ 7 }

// maxBatchBytes bounds the encoded size of any batch of at most rows rows
// with cols (rows batches) or the pk and ts columns (deletes batches).
func maxBatchBytes(schema *schemapb.CollectionSchema, pk *schemapb.FieldSchema, cols []abi.ColumnInfo, rows int) uint64 {
	n := uint64(rows)
	size := func(id int64, t abi.Type, width uint32, nullable bool) uint64 {
		var b uint64
		switch {
		case t.VarLen():
			per := uint64(64 << 10)
			if f := fieldByID(schema, id); f != nil {
				per = maxVarBytes(f)
			}
			b = align8(4*(n+1)) + align8(per*n)
		case t == abi.TypeFixed:
			b = align8(uint64(width) * n)
		default:
			b = align8(uint64(t.FixedWidth()) * n)
		}
		if nullable {
			b += align8((n + 7) / 8)
		}
		return b
	}
	rowsBytes := uint64(abi.HeaderSize + abi.ColumnEntrySize*len(cols))
	for _, c := range cols {
		rowsBytes += size(c.FieldID, c.Type, c.Width, c.Nullable)
	}
	pkType := abi.TypeInt64
	if pk.GetDataType() == schemapb.DataType_VarChar {
		pkType = abi.TypeString
	}
	delBytes := uint64(abi.HeaderSize+2*abi.ColumnEntrySize) + size(pk.GetFieldID(), pkType, 0, false) + size(abi.FieldIDTimestamp, abi.TypeInt64, 0, false)
	return max(rowsBytes, delBytes)
}

// levelName is the task's level string of a segment.
func levelName(l datapb.SegmentLevel) string {
	switch l {
	case datapb.SegmentLevel_L0:
		return "L0"
	case datapb.SegmentLevel_L2:
		return "L2"
	}
	return "L1"
}

// TaskParams are the host-side inputs of a task document.
type TaskParams struct {
	Grant     uint64
	BatchRows int
}

// newTask fills the fields every task shares.
func newTask(p *Plan, cols []abi.ColumnInfo, tp TaskParams) *abi.Task {
	return &abi.Task{
		ABI: abi.Version, PlanID: p.GetPlanID(), Type: p.Type,
		CollectionID: p.CollID, PartitionID: p.PartID,
		PKFieldID: p.PK.GetFieldID(), PKType: p.PKType,
		Columns: cols, CollectionTTLNs: max(p.GetCollectionTtl(), 0), NowMs: p.NowMs,
		MaxSize: p.GetMaxSize(), MaxOutputs: MaxOutputs(p.CompactionPlan),
		MemoryGrant: tp.Grant, BatchRows: tp.BatchRows,
		MaxBatchBytes: maxBatchBytes(p.GetSchema(), p.PK, cols, tp.BatchRows),
	}
}
