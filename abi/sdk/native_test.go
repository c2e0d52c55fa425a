//go:build !wasip1

package sdk_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/abi/sdk/internal/evenpk"
)

func TestNativeDriverEvenPK(t *testing.T) {
	var logs []string
	sdk.SetNativeLogger(func(l abi.LogLevel, m string) { logs = append(logs, m) })
	defer sdk.SetNativeLogger(nil)
	f := newFixture(t, 7)
	c, err := sdk.RunTask(evenpk.New(), f.task, f.deletes, f.batches)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Runs, wantRuns) || !reflect.DeepEqual(c.Counters, wantCounters) {
		t.Fatalf("runs %+v counters %+v", c.Runs, c.Counters)
	}
	if strings.Join(logs, "|") != "evenpk: plan 7, 2 segments|evenpk: done, 2 outputs" {
		t.Fatalf("logs %q", logs)
	}
}

func statusOf(t *testing.T, err error) (abi.Status, string) {
	t.Helper()
	var ae *abi.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *abi.Error", err, err)
	}
	return ae.Status, ae.Message
}

func TestNativeDriverErrors(t *testing.T) {
	f := newFixture(t, 7)
	cases := []struct {
		name   string
		run    func(d *sdk.Driver) error
		status abi.Status
		msg    string
	}{
		{"panic", func(d *sdk.Driver) error { return d.Begin(newFixture(t, -1).task) }, abi.StatusError, "panic in compact_v1_begin of strategy evenpk: evenpk was asked to panic"},
		{"oom", func(d *sdk.Driver) error { return d.Begin(newFixture(t, -2).task) }, abi.StatusOK, ""},
		{"unsupported type", func(d *sdk.Driver) error { return d.Begin(taskJSON(t, 1, abi.CompactionL0, nil)) }, abi.StatusUnsupported, `does not handle "l0" compaction`},
		{"strategy refuses", func(d *sdk.Driver) error {
			return d.Begin(taskJSON(t, 1, abi.CompactionMix, func(t *abi.Task) { t.PKType = abi.TypeString }))
		}, abi.StatusUnsupported, "needs an int64 primary key"},
		{"bad task", func(d *sdk.Driver) error { return d.Begin([]byte("{")) }, abi.StatusBadInput, "task is not valid JSON"},
		{"batch before begin", func(d *sdk.Driver) error { return d.Batch(f.batches[0]) }, abi.StatusBadInput, "no task (call begin first)"},
		{"deletes after batch", func(d *sdk.Driver) error {
			d.Begin(f.task)
			d.Batch(f.batches[0])
			return d.Deletes(f.deletes[0])
		}, abi.StatusBadInput, "deletes must all come before the first batch"},
		{"gap in rows", func(d *sdk.Driver) error { d.Begin(f.task); return d.Batch(f.batches[1]) }, abi.StatusBadInput, "expected to start at 0 of 6"},
		{"finish early", func(d *sdk.Driver) error { d.Begin(f.task); return d.Finish() }, abi.StatusBadInput, "delivered 0 of 6 rows"},
		{"malformed batch", func(d *sdk.Driver) error { d.Begin(f.task); return d.Batch([]byte("garbage")) }, abi.StatusBadInput, "shorter than the 32-byte header"},
		{"wrong columns", func(d *sdk.Driver) error {
			d.Begin(f.task)
			b, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchRows, Rows: 1}, []abi.ColumnData{abi.Int64Data(100, []int64{1})})
			return d.Batch(b)
		}, abi.StatusBadInput, "1 columns, task announced 3"},
		{"poisoned", func(d *sdk.Driver) error { d.Begin([]byte("{")); return d.Begin(f.task) }, abi.StatusError, "failed earlier (BAD_INPUT); discard this instance"},
	}
	for _, c := range cases {
		d, err := sdk.NewDriver(evenpk.New(), new(sdk.Collector))
		if err != nil {
			t.Fatal(err)
		}
		err = c.run(d)
		if c.status == abi.StatusOK {
			if err != nil { // natively the grant is not enforced
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		st, msg := statusOf(t, err)
		if st != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, st, msg, c.status, c.msg)
		}
	}
}

// probeStrategy exercises Probe and L0 through the native driver.
type probeStrategy struct{ pairs []abi.L0Pair }

func (p *probeStrategy) Manifest() sdk.Manifest {
	return sdk.Manifest{Name: "probe", Version: "1", Handles: []string{abi.CompactionL0}}
}
func (p *probeStrategy) Begin(*sdk.Task) error { return nil }
func (p *probeStrategy) Deletes(d *sdk.DeleteBatch) error {
	for i := range d.Rows {
		p.pairs = append(p.pairs, abi.L0Pair{Delete: uint32(d.FirstRow) + uint32(i), Target: 1})
	}
	return nil
}
func (p *probeStrategy) Batch(*sdk.Batch, sdk.Emitter) error { return nil }
func (p *probeStrategy) Finish(out sdk.Emitter) error {
	hits := make([]byte, 1)
	if err := out.Probe(p.pairs, hits); err != nil {
		return err
	}
	var keep []abi.L0Pair
	for i, pr := range p.pairs {
		if hits[i/8]&(1<<(i%8)) != 0 {
			keep = append(keep, pr)
		}
	}
	return out.L0(keep)
}

func TestNativeDriverProbeAndL0(t *testing.T) {
	task := taskJSON(t, 3, abi.CompactionL0, func(t *abi.Task) {
		t.Segments = []abi.Segment{{ID: 1, Role: abi.RoleL0, Deletes: 3}, {ID: 2, Role: abi.RoleTarget, Rows: 10}}
	})
	dels, _ := abi.Encode(abi.BatchHeader{Kind: abi.BatchDeletes, Rows: 3},
		[]abi.ColumnData{abi.Int64Data(100, []int64{5, 6, 7}), abi.Int64Data(1, []int64{1, 1, 1})})
	c := &sdk.Collector{ProbeFunc: func(pairs []abi.L0Pair, hits []byte) error {
		for i, p := range pairs {
			if p.Delete != 1 { // pretend the bloom filter rejects delete 1
				hits[i/8] |= 1 << (i % 8)
			}
		}
		return nil
	}}
	d, err := sdk.NewDriver(&probeStrategy{}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Begin(task); err != nil {
		t.Fatal(err)
	}
	if err := d.Deletes(dels); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	if want := []abi.L0Pair{{Delete: 0, Target: 1}, {Delete: 2, Target: 1}}; !reflect.DeepEqual(c.L0, want) {
		t.Fatalf("L0 = %v, want %v", c.L0, want)
	}
	if _, err := sdk.NewDriver(&badManifest{}, c); err == nil || !strings.Contains(err.Error(), "handles is empty") {
		t.Fatalf("bad manifest: %v", err)
	}
}

type badManifest struct{ probeStrategy }

func (badManifest) Manifest() sdk.Manifest { return sdk.Manifest{Name: "bad", Version: "1"} }
