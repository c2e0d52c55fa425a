package gen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/tso"
)

// segmentRows is one generated L1 segment before encoding: the row identities and the fate of
// every row, from which the columns of any chunk can be built on demand.
type segmentRows struct {
	index    int
	id       int64
	rowIDs   []int64
	ts       []uint64
	pkNum    []int64 // numeric primary key; VarChar keys are formatted from it
	deleted  []bool  // row is removed by the segment's deltalog
	expired  []bool  // row is older than the TTL at Now (may also be deleted)
	deletes  []deleteRecord
	seed     uint64
	pkString bool
}

type deleteRecord struct {
	pkNum int64
	ts    uint64
}

// pkOf returns the primary key number of row i of segment s: keys interleave across segments so
// a k-way merge really interleaves, and are even so that odd numbers inside the range are keys
// no segment holds (what a bloom filter must reject).
func pkOf(i, s, segments int) int64 { return firstPK + 2*(int64(i)*int64(segments)+int64(s)) }

const firstPK = 1_000_000

func varcharPK(n int64) string { return fmt.Sprintf("pk%012d", n) }

func newSegmentRows(c Config, s int, id int64, firstRowID int64) *segmentRows {
	n := c.RowsPerSegment
	rng := rand.New(rand.NewPCG(uint64(c.Seed), uint64(s)+1))
	seg := &segmentRows{
		index: s, id: id, seed: rng.Uint64(),
		rowIDs: make([]int64, n), ts: make([]uint64, n), pkNum: make([]int64, n),
		deleted: make([]bool, n), expired: make([]bool, n),
		pkString: c.PKType == schemapb.DataType_VarChar,
	}
	for i := range n {
		seg.rowIDs[i] = firstRowID + int64(i)
		seg.pkNum[i] = pkOf(i, s, c.Segments)
	}
	if !c.Sorted {
		rng.Shuffle(n, func(a, b int) { seg.pkNum[a], seg.pkNum[b] = seg.pkNum[b], seg.pkNum[a] })
	}

	nowMs := c.Now.UnixMilli()
	freshSpan := int64(24 * 3600 * 1000)
	if c.TTL > 0 {
		freshSpan = max(c.TTL.Milliseconds()/2, 2)
	}
	for _, i := range pickRows(rng, n, c.ExpiredFraction) {
		seg.expired[i] = true
	}
	for i := range n {
		var phys int64
		if seg.expired[i] {
			phys = nowMs - c.TTL.Milliseconds() - rng.Int64N(3600*1000)
		} else {
			phys = nowMs - 1 - rng.Int64N(freshSpan-1)
		}
		seg.ts[i] = tso.Compose(phys, int64(i))
	}

	var victims []int
	if c.Deletes == DeleteClustered {
		victims = pickRuns(rng, n, c.DeleteFraction)
	} else {
		victims = pickRows(rng, n, c.DeleteFraction)
	}
	for _, i := range victims {
		seg.deleted[i] = true
		seg.deletes = append(seg.deletes, deleteRecord{pkNum: seg.pkNum[i], ts: seg.ts[i] + 1})
	}
	// Deletes that must not remove anything: an upsert's delete carries the same timestamp as the
	// new row (the strict rule keeps it), and some deletes name keys that are not in the segment.
	extra := max(1, n/1000)
	for k := 0; k < extra && len(victims) < n; k++ {
		i := rng.IntN(n)
		if !seg.deleted[i] {
			seg.deletes = append(seg.deletes, deleteRecord{pkNum: seg.pkNum[i], ts: seg.ts[i]})
		}
		seg.deletes = append(seg.deletes, deleteRecord{pkNum: -1 - int64(k) - int64(s)*1_000_000, ts: seg.ts[i] + 1})
	}
	return seg
}

// pickRows returns round(f*n) distinct row indices chosen uniformly, in ascending order.
func pickRows(rng *rand.Rand, n int, f float64) []int {
	k := int(math.Round(f * float64(n)))
	if k == 0 {
		return nil
	}
	rows := rng.Perm(n)[:k]
	slices.Sort(rows)
	return rows
}

// pickRuns returns round(f*n) row indices forming contiguous runs of up to 1000 rows placed at
// random, in ascending order.
func pickRuns(rng *rand.Rand, n int, f float64) []int {
	k := int(math.Round(f * float64(n)))
	if k == 0 {
		return nil
	}
	runLen := min(1000, k)
	blocks := (n + runLen - 1) / runLen
	var rows []int
	for _, b := range rng.Perm(blocks) {
		for i := b * runLen; i < min(n, (b+1)*runLen) && len(rows) < k; i++ {
			rows = append(rows, i)
		}
		if len(rows) == k {
			break
		}
	}
	slices.Sort(rows)
	return rows
}

// columns builds the arrow arrays of rows [lo, hi) for every field of schema, keyed by field ID.
// The caller releases them.
func (seg *segmentRows) columns(schema *schemapb.CollectionSchema, dim, lo, hi int) (map[int64]arrow.Array, error) {
	mem := memory.DefaultAllocator
	rng := rand.New(rand.NewPCG(seg.seed, uint64(lo)))
	cols := make(map[int64]arrow.Array, len(schema.Fields))
	n := hi - lo
	for _, f := range schema.Fields {
		switch f.FieldID {
		case RowIDField:
			cols[f.FieldID] = int64Array(mem, seg.rowIDs[lo:hi])
		case TimestampField:
			b := array.NewInt64Builder(mem)
			for _, ts := range seg.ts[lo:hi] {
				b.Append(int64(ts))
			}
			cols[f.FieldID] = b.NewArray()
		case PKField:
			if seg.pkString {
				b := array.NewStringBuilder(mem)
				for _, pk := range seg.pkNum[lo:hi] {
					b.Append(varcharPK(pk))
				}
				cols[f.FieldID] = b.NewArray()
			} else {
				cols[f.FieldID] = int64Array(mem, seg.pkNum[lo:hi])
			}
		case VectorField:
			width := dim * 4
			buf := make([]byte, n*width)
			for off := 0; off < len(buf); off += 4 {
				binary.LittleEndian.PutUint32(buf[off:], math.Float32bits(rng.Float32()*2-1))
			}
			data := array.NewData(&arrow.FixedSizeBinaryType{ByteWidth: width}, n,
				[]*memory.Buffer{nil, memory.NewBufferBytes(buf)}, nil, 0, 0)
			cols[f.FieldID] = array.NewFixedSizeBinaryData(data)
			data.Release()
		case CategoryField:
			b := array.NewInt32Builder(mem)
			for range n {
				b.Append(rng.Int32N(100))
			}
			cols[f.FieldID] = b.NewArray()
		case PriceField:
			b := array.NewFloat64Builder(mem)
			for range n {
				if rng.IntN(10) == 0 {
					b.AppendNull()
				} else {
					b.Append(math.Round(rng.Float64()*100000) / 100)
				}
			}
			cols[f.FieldID] = b.NewArray()
		case TitleField:
			b := array.NewStringBuilder(mem)
			for i := lo; i < hi; i++ {
				if rng.IntN(5) == 0 {
					b.AppendNull()
				} else {
					b.Append(fmt.Sprintf("item %d of segment %d", i, seg.id))
				}
			}
			cols[f.FieldID] = b.NewArray()
		case InStockField:
			b := array.NewBooleanBuilder(mem)
			for range n {
				b.Append(rng.IntN(2) == 0)
			}
			cols[f.FieldID] = b.NewArray()
		case TextField:
			// SparseField's case builds both: the output is computed from the text.
		case SparseField:
			cols[TextField], cols[SparseField] = seg.bm25Columns(mem, lo, hi)
		case MetaField:
			b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
			colors := []string{"red", "green", "blue"}
			for i := lo; i < hi; i++ {
				b.Append(fmt.Appendf(nil, `{"color":%q,"rank":%d}`, colors[rng.IntN(3)], i))
			}
			cols[f.FieldID] = b.NewArray()
		default:
			for _, c := range cols {
				c.Release()
			}
			return nil, fmt.Errorf("gen: no generator for field %d (%s)", f.FieldID, f.Name)
		}
	}
	return cols, nil
}

func int64Array(mem memory.Allocator, v []int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	b.AppendValues(v, nil)
	return b.NewArray()
}
