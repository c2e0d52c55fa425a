//go:build !wasip1

package sdk_test

import (
	"fmt"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
)

// keepAll is the smallest useful strategy: every row of every batch goes to
// output 0 in arrival order.
type keepAll struct{}

func (keepAll) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "keepall", Version: "1.0.0", Handles: []string{abi.CompactionMix}}
}
func (keepAll) Begin(*sdk.Task) error          { return nil }
func (keepAll) Deletes(*sdk.DeleteBatch) error { return nil }
func (keepAll) Finish(sdk.Emitter) error       { return nil }
func (keepAll) Batch(b *sdk.Batch, out sdk.Emitter) error {
	return out.Runs([]sdk.Run{{Segment: b.Segment, FirstRow: uint32(b.FirstRow), Count: uint32(b.Rows)}})
}

// ExampleRunTask runs a strategy natively on encoded input, exactly as the
// wasm build would receive it. In a wasm build the same type is registered
// with sdk.Register from main's init.
func ExampleRunTask() {
	task := []byte(`{"abi":1,"plan_id":1,"type":"mix","pk_field_id":100,"pk_type":"int64",
		"segments":[{"id":7,"role":"input","rows":3}],
		"columns":[{"field_id":100,"name":"pk","type":"int64"}],
		"max_outputs":1,"memory_grant":67108864,"batch_rows":3}`)
	batch, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Rows: 3},
		[]abi.ColumnData{abi.Int64Data(100, []int64{5, 6, 7})})

	got, err := sdk.RunTask(keepAll{}, task, nil, [][]byte{batch})
	fmt.Println(got.Runs, err)
	// Output: [{0 0 3 0}] <nil>
}
