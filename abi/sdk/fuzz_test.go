//go:build !wasip1

package sdk_test

import (
	"errors"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/abi/sdk/internal/evenpk"
)

// FuzzDriverBatch feeds arbitrary bytes to a running task as a rows batch
// and as a deletes batch: the SDK must either accept them or answer
// BAD_INPUT. Any other status would mean malformed input reached the
// strategy (evenpk indexes columns without checks, so it would panic).
func FuzzDriverBatch(f *testing.F) {
	fx := newFixture(f, 7)
	for _, b := range fx.batches {
		f.Add(b, false)
	}
	f.Add(fx.deletes[0], true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, buf []byte, asDeletes bool) {
		d, err := sdk.NewDriver(evenpk.New(), new(sdk.Collector))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Begin(fx.task); err != nil {
			t.Fatal(err)
		}
		if asDeletes {
			err = d.Deletes(buf)
		} else {
			err = d.Batch(buf)
		}
		var ae *abi.Error
		if err != nil && (!errors.As(err, &ae) || ae.Status != abi.StatusBadInput) {
			t.Fatalf("input produced %v, want nil or BAD_INPUT", err)
		}
	})
}
