package host

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
)

// evenpkTask is a one-segment mix task for the SDK's evenpk strategy.
func evenpkTask(t *testing.T, planID int64, grant uint64) []byte {
	t.Helper()
	b, err := json.Marshal(abi.Task{
		ABI: 1, PlanID: planID, Type: abi.CompactionMix, PKFieldID: 100, PKType: abi.TypeInt64,
		Segments: []abi.Segment{{ID: 11, Role: abi.RoleInput, Rows: 8}},
		Columns: []abi.ColumnInfo{
			{FieldID: 100, Name: "pk", Type: abi.TypeInt64},
			{FieldID: abi.FieldIDTimestamp, Name: "ts", Type: abi.TypeInt64},
			{FieldID: abi.FieldIDRowSize, Name: "size", Type: abi.TypeUint32},
		},
		MaxOutputs: 4, MemoryGrant: grant, BatchRows: 4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSDKStrategyEndToEnd runs the abi/sdk test strategy (evenpk: keep even
// primary keys) built as a real Go reactor: the task goes in, one batch is
// encoded straight into guest memory, decisions come back; then the SDK's
// panic and out-of-memory paths surface as typed errors.
func TestSDKStrategyEndToEnd(t *testing.T) {
	wasm := buildWasm(t, "../abi/sdk/internal/evenpk/wasm")
	rt := newTestRuntime(t, Config{})
	p := admit(t, rt, "evenpk@0.1.0", wasm)
	ctx := context.Background()
	const grant = 64 << 20

	inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: grant})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if m := inst.Manifest(); m.Name != "evenpk" || !m.HandlesType(abi.CompactionMix) {
		t.Fatalf("manifest %+v", m)
	}
	if err := inst.Begin(ctx, evenpkTask(t, 5, grant)); err != nil {
		t.Fatal(err)
	}
	pks := []int64{10, 11, 12, 13, 14, 15, 16, 17}
	err = inst.SendBatch(ctx, abi.BatchHeader{Kind: abi.BatchRows, Segment: 0, FirstRow: 0, Rows: len(pks)}, []abi.ColumnData{
		abi.Int64Data(100, pks),
		abi.Int64Data(abi.FieldIDTimestamp, []int64{1, 1, 1, 1, 1, 1, 1, 1}),
		abi.RowSizeData([]uint32{8, 8, 8, 8, 8, 8, 8, 8}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	var kept []uint32
	for _, r := range inst.Decisions().Runs {
		for i := uint32(0); i < r.Count; i++ {
			kept = append(kept, r.FirstRow+i)
		}
	}
	if len(kept) != 4 || kept[0] != 0 || kept[1] != 2 || kept[2] != 4 || kept[3] != 6 {
		t.Fatalf("kept rows %v (runs %+v)", kept, inst.Decisions().Runs)
	}

	for _, c := range []struct {
		plan int64
		kind error
		msg  string
	}{
		{-1, ErrGuestFailed, "evenpk was asked to panic"},
		{-2, ErrOutOfMemory, "OUT_OF_MEMORY"},
	} {
		inst, err := rt.NewInstance(ctx, p, InstanceConfig{Grant: grant})
		if err != nil {
			t.Fatal(err)
		}
		err = inst.Begin(ctx, evenpkTask(t, c.plan, grant))
		inst.Close()
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "evenpk@0.1.0 (sha256 ") {
			t.Fatalf("plan %d: %v", c.plan, err)
		}
	}
}
