package mempool

import (
	"fmt"
	"math"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// Defaults used by Estimate when an EstimateOptions field is zero.
const (
	DefaultBatchRows = 4096
	// DefaultGuestMinBytes is the declared minimum memory assumed for a Go
	// strategy when the host does not pass the module's real minimum: 550
	// pages, what a trivial Go 1.26 c-shared wasip1 module declares when built
	// by a toolchain with golang/go#78321 (a 32 MiB BSS variable). Go 1.26.8
	// on this project's build machine declares 32 pages (2 MiB), so passing
	// the admitted module's minimum gives a much smaller share.
	DefaultGuestMinBytes = 550 * wasmPageSize
	// DefaultGuestRuntimeBytes covers what the Go runtime adds to the
	// minimum before any data: its first heap arena, stacks and metadata.
	DefaultGuestRuntimeBytes = 4 << 20
	DefaultGuestHeapFactor   = 2.0 // Go GC with GOGC=100 lets the heap reach 2x live data
	DefaultReadAhead         = 2   // batches in flight per open input (one decoding, one queued)
	DefaultBinlogMaxSize     = 64 << 20
	DefaultPrefetch          = 1 // encoded chunks downloaded ahead of the one decoding, per open input
	// DefaultDownloadLimit is the largest storage-v2 file the read stage
	// downloads whole (segread.Options.DownloadLimit); a larger one, or one
	// of unknown log_size, is read in place with ranged reads and holds
	// about InPlaceObjectBytes instead.
	DefaultDownloadLimit = 64 << 20
	// InPlaceObjectBytes is what reading one v2 file in place holds per
	// column: Parquet's 1 MiB read buffer and a ~1 MiB row group's pages.
	InPlaceObjectBytes = 2 << 20
	// DefaultEncodeFactor is the Go heap the Parquet encoding of one output
	// chunk holds, per byte of the chunk: the pre-sized payload buffer (1x),
	// arrow-go's page buffers, kept in its buffer pool between pages (about
	// 1.8x for 768-dim vectors), and the ZSTD encoder's history. Measured
	// from the live-heap profile of the 512 MiB bench case (BENCH.md).
	DefaultEncodeFactor = 3.0
	// DefaultHostHeapFactor scales the host terms to the Go heap the task
	// needs. Measured on the 512 MiB bench case (BENCH.md): the live heap
	// is ~1.35x the terms (arrow-go's pooled page buffers and the ZSTD
	// encoders' state come on top of what the terms model), and a memory
	// limit at the lease (host Options.LimitHeap) needs ~20% more than the
	// live heap for the collector not to run back to back.
	DefaultHostHeapFactor    = 1.6
	DefaultVarWidthExpansion = 3.0 // decoded/encoded bytes of variable-width data without memory_size
	DefaultVarWidth          = 64  // bytes per value of a variable-width field with no size data at all
	// DecisionBytesPerRow is the strategy's answer per row it sees: keep or
	// drop, target output segment and order (two int32).
	DecisionBytesPerRow = 8
	// goMapFactor: bytes a Go map needs per entry relative to key+value
	// (buckets, tophash bytes, load factor).
	goMapFactor = 2.0
	// arrowOffsetBytes: int32 offsets of Arrow string/binary arrays.
	arrowOffsetBytes = 4
)

// EstimateOptions tunes [Estimate]. Zero values select the defaults.
type EstimateOptions struct {
	// BatchRows is the rows per batch the host reads and hands the strategy.
	BatchRows int64
	// StrategyFields are the field IDs the strategy declared it reads.
	// Default: the primary key and the timestamp (field 1).
	StrategyFields []int64
	// RetainRows says the strategy keeps its columns for every input row (a
	// sort, say) instead of one batch at a time.
	RetainRows bool
	// GuestMinBytes is the strategy module's declared minimum memory
	// (min pages * 64 KiB from admission). Default DefaultGuestMinBytes.
	GuestMinBytes int64
	// GuestRuntimeBytes is the guest runtime's overhead above the minimum.
	GuestRuntimeBytes int64
	// GuestHeapFactor multiplies the guest's live data for GC headroom.
	GuestHeapFactor float64
	// ReadAhead is the number of batches in flight per open input.
	ReadAhead int
	// OpenInputs is how many input segments are read at the same time.
	// Default: all of them (a merge keeps one batch per input).
	OpenInputs int
	// BinlogMaxSize caps the output chunk buffer (dataNode.segment.binlog.maxsize).
	BinlogMaxSize int64
	// Prefetch is the encoded chunks downloaded ahead per open input.
	Prefetch int
	// DownloadLimit is the read stage's limit for downloading a storage-v2
	// file whole (default DefaultDownloadLimit); negative means every v2
	// file is read in place.
	DownloadLimit int64
	// EncodeFactor is the heap of encoding one output chunk per chunk byte.
	EncodeFactor float64
	// HostHeapFactor multiplies the host's live data for GC headroom.
	HostHeapFactor float64
}

// MemoryEstimate is the memory a plan needs, split into the strategy's share
// (its linear memory cap) and the host's in-flight buffers. All sizes are
// bytes. The parts are exported so measurements can be compared per term.
type MemoryEstimate struct {
	Strategy int64 // cap for the strategy's linear memory, a multiple of 64 KiB
	Host     int64 // host buffers: read batches, fetched objects, output chunk, deletes
	Total    int64 // Strategy + Host: the lease to request

	Rows             int64 // input rows of all segments
	Deletes          int64 // delete records in the plan's deltalogs
	BatchRows        int64 // rows per batch used (BatchRows capped at Rows)
	RowBytes         int64 // decoded bytes per row, all columns
	StrategyRowBytes int64 // decoded bytes per row of the strategy's columns

	GuestBase      int64 // module minimum + runtime overhead
	GuestData      int64 // strategy columns of the rows it holds
	GuestDecisions int64 // its per-row answers
	GuestDeleteMap int64 // its pk -> delete ts maps

	HostReadBatches   int64 // decoded batches read ahead of the strategy
	HostHeldBatches   int64 // delivered batches held until the write stage applies their runs
	HostObjectBuffers int64 // fetched, still-encoded binlog chunks being decoded
	HostOutputChunk   int64 // output chunk: the input batches its rows are slices of
	HostOutputEncode  int64 // Parquet encoding of the chunk being flushed
	HostDeleteData    int64 // decoded deltalog records (pk, ts)
	HostHeadroom      int64 // GC headroom over the terms above
}

// Estimate computes a plan's memory from its schema, row counts
// (Binlog.entries_num), log sizes (memory_size, else log_size), delete
// counts (deltalog entries_num) and the batch size. With
//
//	N   = input rows: per segment the sum of entries_num of the primary key's
//	      binlogs (or of the field with the most rows), summed over segments
//	D   = delete records: entries_num of every deltalog, summed (maps of all
//	      segments may be alive at once)
//	B   = min(BatchRows, N, the largest entries_num of one binlog): batches
//	      never span two binlog chunks
//	W_f = decoded bytes per row of field f: memory_size/entries_num from its
//	      binlogs; else the schema's fixed width (Int64 8, FloatVector 4*dim,
//	      ...); else for variable-width fields log_size/entries_num *
//	      DefaultVarWidthExpansion + 4 offset bytes, or DefaultVarWidth + 4.
//	      Nullable fields add a validity bit per row.
//	W   = sum of W_f over all columns (schema fields, row ID and timestamp)
//	W_S = sum of W_f over the strategy's fields (pk and timestamp by default)
//	R   = N if RetainRows, else B
//	K   = key bytes of one delete: 8 for an Int64 pk, for VarChar the average
//	      length (deltalog memory_size/entries_num - 16, or W_pk - 4)
//
// the strategy's share (guest linear memory) is
//
//	GuestData      = R * W_S
//	GuestDecisions = R * DecisionBytesPerRow
//	GuestDeleteMap = D * (K' + 8) * 2, K' = 8 (Int64) or 16 + K (Go string)
//	Strategy       = roundup64KiB(GuestMinBytes + GuestRuntimeBytes +
//	                 GuestHeapFactor * (GuestData + GuestDecisions + GuestDeleteMap))
//
// and the host's in-flight buffers are
//
//	I                 = min(OpenInputs, segments)
//	C                 = min(BinlogMaxSize, N * W): one output chunk
//	HostReadBatches   = I * ReadAhead * B * W
//	HostHeldBatches   = (I * ReadAhead + 1) * B * W: the host's held-input
//	                    budget plus the batch the strategy is deciding
//	HostObjectBuffers = I * (Prefetch + 1) * max over segments of (sum over
//	                    columns of the largest log_size of that column): the
//	                    encoded chunk decoding and the ones downloaded ahead;
//	                    a storage-v2 file read in place (log_size above
//	                    DownloadLimit, or unknown) counts InPlaceObjectBytes
//	                    per column of its group instead
//	HostOutputChunk   = C + 2 * B * W: the chunk's rows are slices of whole
//	                    input batches, one partly used at each end
//	HostOutputEncode  = EncodeFactor * C
//	HostDeleteData    = D * (K + 8), plus 4 offset bytes per VarChar key
//	HostHeadroom      = (HostHeapFactor - 1) * the sum of the six
//	Host              = the sum of the seven
//
// Total = Strategy + Host. The result is an estimate; the terms are exported
// so tests can compare each with measured peaks.
func Estimate(plan *datapb.CompactionPlan, opts EstimateOptions) (MemoryEstimate, error) {
	if plan == nil {
		return MemoryEstimate{}, fmt.Errorf("mempool: estimate: nil plan")
	}
	e := estimator{plan: plan, opts: opts}
	if err := e.init(); err != nil {
		return MemoryEstimate{}, fmt.Errorf("mempool: estimate plan %d: %w", plan.GetPlanID(), err)
	}
	return e.compute(), nil
}

// columnUnit is one FieldBinlog column (V1) or column group (V2 child fields).
type columnUnit struct {
	fields  []int64
	entries int64
	memory  int64
	log     int64
	maxLog  int64 // largest single log_size in this segment
	maxRows int64 // largest single entries_num: a binlog chunk's rows
}

type estimator struct {
	plan         *datapb.CompactionPlan
	opts         EstimateOptions
	fields       map[int64]*schemapb.FieldSchema
	order        []int64 // field IDs in schema order, system fields first if missing
	pk           *schemapb.FieldSchema
	units        map[string]*columnUnit // key: sorted child IDs, summed over segments
	single       map[int64]*columnUnit  // field -> its own V1 unit
	rows         int64
	dels         int64
	delMem       int64
	maxObj       int64 // max over segments of the sum of per-column max log sizes
	maxChunkRows int64 // the most rows of one binlog chunk: no batch is larger
}

func (e *estimator) init() error {
	o := &e.opts
	if o.BatchRows < 0 || o.GuestMinBytes < 0 || o.GuestRuntimeBytes < 0 || o.GuestHeapFactor < 0 ||
		o.ReadAhead < 0 || o.OpenInputs < 0 || o.BinlogMaxSize < 0 || math.IsNaN(o.GuestHeapFactor) ||
		o.Prefetch < 0 || o.EncodeFactor < 0 || math.IsNaN(o.EncodeFactor) || o.HostHeapFactor < 0 || math.IsNaN(o.HostHeapFactor) {
		return fmt.Errorf("negative estimate option in %+v", *o)
	}
	setDefault(&o.BatchRows, DefaultBatchRows)
	setDefault(&o.GuestMinBytes, DefaultGuestMinBytes)
	setDefault(&o.GuestRuntimeBytes, DefaultGuestRuntimeBytes)
	setDefault(&o.GuestHeapFactor, DefaultGuestHeapFactor)
	setDefault(&o.ReadAhead, DefaultReadAhead)
	setDefault(&o.BinlogMaxSize, DefaultBinlogMaxSize)
	setDefault(&o.Prefetch, DefaultPrefetch)
	setDefault(&o.DownloadLimit, DefaultDownloadLimit)
	setDefault(&o.EncodeFactor, DefaultEncodeFactor)
	setDefault(&o.HostHeapFactor, DefaultHostHeapFactor)
	segs := e.plan.GetSegmentBinlogs()
	if len(segs) == 0 {
		return fmt.Errorf("plan references no segments")
	}
	if e.opts.OpenInputs == 0 || e.opts.OpenInputs > len(segs) {
		e.opts.OpenInputs = len(segs)
	}
	if err := e.initSchema(); err != nil {
		return err
	}
	if len(e.opts.StrategyFields) == 0 {
		e.opts.StrategyFields = []int64{e.pk.GetFieldID(), timestampField}
	}
	for _, id := range e.opts.StrategyFields {
		if e.fields[id] == nil {
			return fmt.Errorf("strategy field %d is not in the schema", id)
		}
	}
	e.units = map[string]*columnUnit{}
	e.single = map[int64]*columnUnit{}
	for _, seg := range segs {
		if err := e.addSegment(seg); err != nil {
			return fmt.Errorf("segment %d: %w", seg.GetSegmentID(), err)
		}
	}
	if e.rows == 0 {
		e.rows = max(e.plan.GetTotalRows(), 0)
	}
	if _, err := e.allWidth(); err != nil {
		return err
	}
	_, err := e.rowWidth(e.opts.StrategyFields)
	return err
}

func setDefault[T int | int64 | float64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

const (
	rowIDField     = 0
	timestampField = 1
)

func (e *estimator) initSchema() error {
	schema := e.plan.GetSchema()
	if schema == nil {
		return fmt.Errorf("plan has no schema")
	}
	e.fields = map[int64]*schemapb.FieldSchema{}
	for _, f := range schema.GetFields() {
		if f == nil {
			continue
		}
		if e.fields[f.GetFieldID()] != nil {
			return fmt.Errorf("schema defines field %d twice", f.GetFieldID())
		}
		e.fields[f.GetFieldID()] = f
		e.order = append(e.order, f.GetFieldID())
		if f.GetIsPrimaryKey() {
			if e.pk != nil {
				return fmt.Errorf("schema has two primary keys: fields %d and %d", e.pk.GetFieldID(), f.GetFieldID())
			}
			e.pk = f
		}
	}
	if e.pk == nil {
		return fmt.Errorf("schema %q has no primary key field", schema.GetName())
	}
	for _, sys := range []struct {
		id   int64
		name string
	}{{rowIDField, "RowID"}, {timestampField, "Timestamp"}} {
		if e.fields[sys.id] == nil {
			e.fields[sys.id] = &schemapb.FieldSchema{FieldID: sys.id, Name: sys.name, DataType: schemapb.DataType_Int64}
			e.order = append([]int64{sys.id}, e.order...)
		}
	}
	return nil
}

func (e *estimator) addSegment(seg *datapb.CompactionSegmentBinlogs) error {
	var pkRows, maxRows, objBytes int64
	pkSeen := false
	for _, fb := range seg.GetFieldBinlogs() {
		children := fb.GetChildFields()
		if len(children) == 0 {
			children = []int64{fb.GetFieldID()}
		}
		for _, id := range children {
			if e.fields[id] == nil {
				return fmt.Errorf("binlogs for field %d, which the schema does not define", id)
			}
		}
		u, err := sumBinlogs(fb, "field")
		if err != nil {
			return err
		}
		if seg.GetStorageVersion() == storageV2 {
			u.maxLog = e.v2ObjectBytes(fb, len(children))
		}
		u.fields = children
		key := fmt.Sprint(children)
		acc := e.units[key]
		if acc == nil {
			acc = &columnUnit{fields: children}
			e.units[key] = acc
			if len(children) == 1 {
				e.single[children[0]] = acc
			}
		}
		acc.entries += u.entries
		acc.memory += u.memory
		acc.log += u.log
		acc.maxLog = max(acc.maxLog, u.maxLog)
		objBytes += u.maxLog
		e.maxChunkRows = max(e.maxChunkRows, u.maxRows)
		maxRows = max(maxRows, u.entries)
		for _, id := range children {
			if id == e.pk.GetFieldID() {
				pkRows, pkSeen = u.entries, true
			}
		}
	}
	if pkSeen {
		e.rows += pkRows
	} else {
		e.rows += maxRows
	}
	e.maxObj = max(e.maxObj, objBytes)
	for _, fb := range seg.GetDeltalogs() {
		u, err := sumBinlogs(fb, "deltalog")
		if err != nil {
			return err
		}
		e.dels += u.entries
		e.delMem += u.memory
	}
	return nil
}

// storageV2 is CompactionSegmentBinlogs.storage_version of packed
// column-group segments.
const storageV2 = 2

// v2ObjectBytes is what the read stage holds for the largest file of a v2
// column group of cols columns: the file when it is downloaded whole
// (0 < log_size <= DownloadLimit), else InPlaceObjectBytes per column, as
// larger files and files of unknown size are read in place.
func (e *estimator) v2ObjectBytes(fb *datapb.FieldBinlog, cols int) int64 {
	var most int64
	for _, b := range fb.GetBinlogs() {
		size := b.GetLogSize()
		if size <= 0 || size > e.opts.DownloadLimit {
			size = int64(max(cols, 1)) * InPlaceObjectBytes
		}
		most = max(most, size)
	}
	return most
}

func sumBinlogs(fb *datapb.FieldBinlog, kind string) (columnUnit, error) {
	var u columnUnit
	for _, b := range fb.GetBinlogs() {
		if b == nil {
			continue
		}
		if b.GetEntriesNum() < 0 || b.GetLogSize() < 0 || b.GetMemorySize() < 0 {
			return u, fmt.Errorf("%s %d log %d (%s): negative entries_num %d, log_size %d or memory_size %d",
				kind, fb.GetFieldID(), b.GetLogID(), b.GetLogPath(), b.GetEntriesNum(), b.GetLogSize(), b.GetMemorySize())
		}
		u.entries = satAdd(u.entries, b.GetEntriesNum())
		u.memory = satAdd(u.memory, b.GetMemorySize())
		u.log = satAdd(u.log, b.GetLogSize())
		u.maxLog = max(u.maxLog, b.GetLogSize())
		u.maxRows = max(u.maxRows, b.GetEntriesNum())
	}
	return u, nil
}

// fixedWidth returns the schema width of a fixed-width field, or 0 for a
// variable-width one. err reports a vector without a usable dim.
func fixedWidth(f *schemapb.FieldSchema) (int64, error) {
	dim := func() (int64, error) {
		for _, kv := range f.GetTypeParams() {
			if kv.GetKey() == "dim" {
				d, err := strconv.ParseInt(kv.GetValue(), 10, 64)
				if err != nil || d <= 0 {
					return 0, fmt.Errorf("field %d (%s) has bad dim %q", f.GetFieldID(), f.GetName(), kv.GetValue())
				}
				return d, nil
			}
		}
		return 0, fmt.Errorf("field %d (%s) of type %s has no dim and no memory_size", f.GetFieldID(), f.GetName(), f.GetDataType())
	}
	switch f.GetDataType() {
	case schemapb.DataType_Bool, schemapb.DataType_Int8:
		return 1, nil
	case schemapb.DataType_Int16:
		return 2, nil
	case schemapb.DataType_Int32, schemapb.DataType_Float:
		return 4, nil
	case schemapb.DataType_Int64, schemapb.DataType_Double, schemapb.DataType_Timestamptz:
		return 8, nil
	case schemapb.DataType_FloatVector:
		d, err := dim()
		return 4 * d, err
	case schemapb.DataType_BinaryVector:
		d, err := dim()
		return (d + 7) / 8, err
	case schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
		d, err := dim()
		return 2 * d, err
	case schemapb.DataType_Int8Vector:
		return dim()
	}
	return 0, nil
}

// width returns decoded bytes per row for field id, preferring its own
// binlog sizes.
func (e *estimator) width(id int64) (float64, error) {
	f := e.fields[id]
	if u := e.single[id]; u != nil && u.entries > 0 && u.memory > 0 {
		return float64(u.memory) / float64(u.entries), nil
	}
	w, err := fixedWidth(f)
	if err != nil || w > 0 {
		return float64(w), err
	}
	if u := e.single[id]; u != nil && u.entries > 0 && u.log > 0 {
		return float64(u.log)/float64(u.entries)*DefaultVarWidthExpansion + arrowOffsetBytes, nil
	}
	return DefaultVarWidth + arrowOffsetBytes, nil
}

// rowWidth returns the decoded bytes per row of the given fields, including
// validity bits of nullable fields.
func (e *estimator) rowWidth(ids []int64) (float64, error) {
	var sum float64
	for _, id := range ids {
		w, err := e.width(id)
		if err != nil {
			return 0, err
		}
		if e.fields[id].GetNullable() {
			w += 1.0 / 8
		}
		sum += w
	}
	return sum, nil
}

// allWidth is W: V2 column groups with memory_size count as a whole,
// every other column by its own width.
func (e *estimator) allWidth() (float64, error) {
	covered := map[int64]bool{}
	var sum float64
	for _, u := range e.units {
		if len(u.fields) > 1 && u.entries > 0 && u.memory > 0 {
			sum += float64(u.memory) / float64(u.entries)
			for _, id := range u.fields {
				covered[id] = true
			}
		}
	}
	var rest []int64
	for _, id := range e.order {
		if !covered[id] {
			rest = append(rest, id)
		}
	}
	w, err := e.rowWidth(rest)
	return sum + w, err
}

func (e *estimator) compute() MemoryEstimate {
	// Width errors were reported by init; compute cannot fail.
	o := e.opts
	n := float64(e.rows)
	d := float64(e.dels)
	b := float64(min(o.BatchRows, e.rows))
	if e.maxChunkRows > 0 { // batches never span two binlog chunks
		b = min(b, float64(e.maxChunkRows))
	}
	w, _ := e.allWidth()
	ws, _ := e.rowWidth(o.StrategyFields)
	chunk := min(float64(o.BinlogMaxSize), math.Ceil(n*w))
	r := b
	if o.RetainRows {
		r = n
	}

	// Delete key sizes.
	key, guestKey, hostKey := 8.0, 8.0, 8.0
	if e.pk.GetDataType() != schemapb.DataType_Int64 {
		if e.dels > 0 && e.delMem > 0 {
			key = max(float64(e.delMem)/d-16, 0)
		} else {
			pw, _ := e.width(e.pk.GetFieldID())
			key = max(pw-arrowOffsetBytes, 0)
		}
		guestKey = 16 + key
		hostKey = key + arrowOffsetBytes
	}

	est := MemoryEstimate{
		Rows:             e.rows,
		Deletes:          e.dels,
		BatchRows:        int64(b),
		RowBytes:         clampInt(math.Ceil(w)),
		StrategyRowBytes: clampInt(math.Ceil(ws)),

		GuestBase:      satAdd(o.GuestMinBytes, o.GuestRuntimeBytes),
		GuestData:      clampInt(math.Ceil(r * ws)),
		GuestDecisions: clampInt(r * DecisionBytesPerRow),
		GuestDeleteMap: clampInt(d * (guestKey + 8) * goMapFactor),

		HostReadBatches:   clampInt(math.Ceil(float64(o.OpenInputs) * float64(o.ReadAhead) * b * w)),
		HostHeldBatches:   clampInt(math.Ceil((float64(o.OpenInputs)*float64(o.ReadAhead) + 1) * b * w)),
		HostObjectBuffers: clampInt(float64(o.OpenInputs) * float64(o.Prefetch+1) * float64(e.maxObj)),
		HostOutputChunk:   clampInt(chunk + math.Ceil(2*b*w)),
		HostOutputEncode:  clampInt(math.Ceil(o.EncodeFactor * chunk)),
		HostDeleteData:    clampInt(d * (hostKey + 8)),
	}
	live := float64(est.GuestData) + float64(est.GuestDecisions) + float64(est.GuestDeleteMap)
	guest := float64(est.GuestBase) + math.Ceil(o.GuestHeapFactor*live)
	est.Strategy = clampInt(math.Ceil(guest/wasmPageSize) * wasmPageSize)
	live = 0
	for _, t := range []int64{est.HostReadBatches, est.HostHeldBatches, est.HostObjectBuffers, est.HostOutputChunk, est.HostOutputEncode, est.HostDeleteData} {
		live += float64(t)
	}
	est.HostHeadroom = clampInt(math.Ceil((o.HostHeapFactor - 1) * live))
	est.Host = clampInt(live + float64(est.HostHeadroom))
	est.Total = satAdd(est.Strategy, est.Host)
	return est
}

// clampInt converts a non-negative float to int64, saturating.
func clampInt(f float64) int64 {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	if f <= 0 || math.IsNaN(f) {
		return 0
	}
	return int64(f)
}
