package host

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/host/internal/reference"

	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
	"github.com/compacthost/compacthost/storage/objstore/objstoretest"
)

// TestCompactNative runs a generated collection's mix and L0 plans through
// the natively linked strategies and compares with the reference.
func TestCompactNative(t *testing.T) {
	ctx := context.Background()
	store := objstoretest.Local(t)
	col := generate(t, store, smallGen(1))
	var pr progressRecorder
	h := newTestHost(t, store, 0, func(o *Options) { o.Progress = pr.record })
	res, err := h.Compact(ctx, col.MixPlan, Native(mixstrategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkMix(t, store, col.MixPlan, res, pr.final())
	if got := pr.final(); got.RowsRead != col.Expected.Rows || got.Deleted != col.Expected.Deleted || got.Expired != col.Expected.Expired || got.RowsWritten != col.Expected.Kept {
		t.Fatalf("final progress %+v, generator expects %+v", got, col.Expected)
	}
	res, err = h.Compact(ctx, col.L0Plan, Native(l0strategy.New()))
	if err != nil {
		t.Fatal(err)
	}
	checkL0(t, store, col.L0Plan, res)
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d after the tasks, want 0", u)
	}
}

// TestCompactConcurrent runs mix and L0 plans of three collections at once
// through one Host (shared runtime, plugins and pool) and checks each.
func TestCompactConcurrent(t *testing.T) {
	ctx := context.Background()
	rt := pipelineRuntime(t)
	plugins := bundledPlugins(t, rt)
	store := objstoretest.Local(t)
	h := newTestHost(t, store, 0, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 3 {
		cfg := smallGen(20 + int64(i))
		cfg.CollectionID += int64(i)
		cfg.Sorted = i%2 == 0
		col := generate(t, store, cfg)
		// gen gives every collection the same output IDs; Milvus's IDs are
		// global, and a Host refuses overlapping ranges of running tasks.
		for _, p := range []*datapb.CompactionPlan{col.MixPlan, col.L0Plan} {
			shiftRanges(p, int64(i))
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			res, err := h.Compact(ctx, col.MixPlan, WithPlugin(plugins.mix))
			if err == nil {
				var got *reference.MixResult
				if got, err = reference.ReadMix(ctx, store, DefaultRootPath, col.MixPlan, res); err == nil && got.Counts.Kept != col.Expected.Kept {
					err = fmt.Errorf("plan of collection %d kept %d rows, want %d", cfg.CollectionID, got.Counts.Kept, col.Expected.Kept)
				}
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := h.Compact(ctx, col.L0Plan, WithPlugin(plugins.l0))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if u := h.Pool().Stats().Used; u != 0 {
		t.Fatalf("pool Used = %d, want 0", u)
	}
}

// shiftRanges moves a plan's output ID ranges k times their size up.
func shiftRanges(p *datapb.CompactionPlan, k int64) {
	for _, r := range []*datapb.IDRange{p.GetPreAllocatedSegmentIDs(), p.GetPreAllocatedLogIDs()} {
		if r != nil {
			n := r.GetEnd() - r.GetBegin()
			r.Begin, r.End = r.Begin+k*n, r.End+k*n
		}
	}
	p.BeginLogID = p.GetPreAllocatedLogIDs().GetBegin()
}

// keepAll is a native strategy asking for every column: it checks the
// batches carry them as the task describes, records what it saw and keeps
// every row in arrival order.
type keepAll struct {
	task *sdk.Task
	seen [][]any // per delivered row: the values of every requested field
	err  error
}

func (k *keepAll) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "keepall", Version: "1.0.0", Handles: []string{abi.CompactionMix},
		Fields: []string{"pk", "ts", "size", "rowid", "101", "category", "price", "title", "in_stock", "$meta"}}
}
func (k *keepAll) Begin(t *sdk.Task) error        { k.task = t; return nil }
func (k *keepAll) Deletes(*sdk.DeleteBatch) error { return nil }
func (k *keepAll) Finish(sdk.Emitter) error       { return nil }
func (k *keepAll) Batch(b *sdk.Batch, out sdk.Emitter) error {
	if b.NumColumns() != len(k.task.Columns) {
		return fmt.Errorf("batch has %d columns, task %d", b.NumColumns(), len(k.task.Columns))
	}
	for r := 0; r < b.Rows; r++ {
		var vals []any
		for i, ci := range k.task.Columns {
			c := b.Column(i)
			if c.FieldID != ci.FieldID || c.Type != ci.Type || c.Nullable != ci.Nullable {
				return fmt.Errorf("column %d is field %d %s nullable=%v, task says %+v", i, c.FieldID, c.Type, c.Nullable, ci)
			}
			switch {
			case c.IsNull(r):
				vals = append(vals, nil)
			case c.Type == abi.TypeString:
				vals = append(vals, c.String(r))
			case c.Type == abi.TypeBinary || c.Type == abi.TypeFixed:
				vals = append(vals, string(c.Bytes(r)))
			case c.Type == abi.TypeInt64:
				vals = append(vals, c.Int64s()[r])
			case c.Type == abi.TypeInt32:
				vals = append(vals, int64(c.Int32s()[r]))
			case c.Type == abi.TypeFloat64:
				vals = append(vals, c.Float64s()[r])
			case c.Type == abi.TypeBool:
				vals = append(vals, c.Bools()[r])
			case c.Type == abi.TypeUint32:
				vals = append(vals, int64(c.Uint32s()[r]))
			}
		}
		k.seen = append(k.seen, vals)
	}
	return out.Runs([]sdk.Run{{Segment: b.Segment, FirstRow: uint32(b.FirstRow), Count: uint32(b.Rows)}})
}

// TestCompactAllColumns: every field type, nulls included, reaches the
// strategy as written, and rows kept in arrival order come out unchanged.
func TestCompactAllColumns(t *testing.T) {
	store := objstoretest.Local(t)
	cfg := smallGen(12)
	cfg.PKType = schemapb.DataType_VarChar
	col := generate(t, store, cfg)
	h := newTestHost(t, store, 0, nil)
	k := &keepAll{}
	res, err := h.Compact(context.Background(), col.MixPlan, Native(k))
	if err != nil {
		t.Fatal(err)
	}
	got, err := reference.ReadMix(context.Background(), store, DefaultRootPath, col.MixPlan, res)
	if err != nil {
		t.Fatal(err)
	}
	var rows []reference.Row
	for _, o := range got.Outputs {
		rows = append(rows, o.Rows...)
	}
	nulls := 0
	for _, vals := range k.seen {
		for _, v := range vals {
			if v == nil {
				nulls++
			}
		}
	}
	if nulls == 0 {
		t.Fatal("no null reached the strategy; the test wants nullable fields with nulls")
	}
	if len(rows) != len(k.seen) || int64(len(rows)) != col.Expected.Rows {
		t.Fatalf("%d rows out, strategy saw %d, input %d", len(rows), len(k.seen), col.Expected.Rows)
	}
	index := map[int64]int{}
	for i, f := range got.Fields {
		index[f.GetFieldID()] = i
	}
	for r, row := range rows {
		for i, ci := range k.task.Columns {
			if ci.FieldID == abi.FieldIDRowSize {
				size, err := reference.RowSize(got.Fields, row.Values)
				if err != nil || size != k.seen[r][i].(int64) {
					t.Fatalf("row %d: size column %v, reference row size %d (%v)", r, k.seen[r][i], size, err)
				}
				continue
			}
			want := row.Values[index[ci.FieldID]]
			switch v := want.(type) {
			case []byte:
				want = string(v)
			case int32:
				want = int64(v)
			}
			if fmt.Sprint(want) != fmt.Sprint(k.seen[r][i]) {
				t.Fatalf("row %d field %d: strategy saw %v, output holds %v", r, ci.FieldID, k.seen[r][i], want)
			}
		}
	}
}
