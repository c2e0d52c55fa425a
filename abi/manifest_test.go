package abi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(`{"abi":1,"name":"mix","version":"1.0.0","handles":["mix"],"min_memory":1048576,"extra":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !m.HandlesType(CompactionMix) || m.HandlesType(CompactionL0) || len(m.FieldSelectors()) != 3 || m.MinMemory != 1<<20 {
		t.Fatalf("manifest %+v", m)
	}
	cases := []struct{ doc, want string }{
		{`{"abi":2,"name":"x","version":"1","handles":["mix"]}`, "declares abi 2"},
		{`{"abi":1,"name":"X","version":"1","handles":["mix"]}`, `name "X" must match`},
		{`{"abi":1,"name":"x@1","version":"1","handles":["mix"]}`, `name "x@1"`},
		{`{"abi":1,"name":"x","version":"1 0","handles":["mix"]}`, `version "1 0"`},
		{`{"abi":1,"name":"x","version":"1","handles":[]}`, "handles is empty"},
		{`{"abi":1,"name":"x","version":"1","handles":["sort"]}`, `unknown compaction type "sort"`},
		{`{"abi":1,"name":"x","version":"1","handles":["mix"],"fields":["-5"]}`, `field selector "-5"`},
		{`{"abi":1,"name":"x","version":"1","handles":["mix"],"batch_rows":-1}`, "batch_rows -1"},
		{`{"abi":1`, "not valid JSON"},
	}
	for _, c := range cases {
		if _, err := ParseManifest([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
	}
	if _, err := ParseManifest([]byte(`{"abi":1,"name":"x","version":"1","handles":["l0"],"fields":["pk","101","$meta","vec_1"]}`)); err != nil {
		t.Fatal(err)
	}
}

func validTask() *Task {
	lo, hi := "5", "900"
	return &Task{ABI: 1, PlanID: 7, Type: CompactionMix, PKFieldID: 100, PKType: TypeInt64,
		Segments: []Segment{{ID: 1, Role: RoleInput, Rows: 10, Sorted: true}, {ID: 2, Role: RoleTarget, PKMin: &lo, PKMax: &hi}},
		Columns:  []ColumnInfo{{FieldID: 100, Name: "pk", Type: TypeInt64}, {FieldID: -1, Name: "size", Type: TypeUint32}},
		MaxSize:  1 << 20, MaxOutputs: 4, MemoryGrant: 64 << 20, BatchRows: 8192, MaxBatchBytes: 1 << 20}
}

func TestTaskJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(validTask())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"pk_type":"int64"`) || !strings.Contains(string(b), `"pk_min":"5"`) {
		t.Fatalf("task JSON %s", b)
	}
	task, err := ParseTask(b)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, ok := task.Segments[1].PKRangeInt64(); !ok || lo != 5 || hi != 900 {
		t.Fatalf("pk range %d %d %v", lo, hi, ok)
	}
	if i, ok := task.ColumnIndex(-1); !ok || i != 1 {
		t.Fatalf("ColumnIndex(-1) = %d %v", i, ok)
	}
}

func TestTaskValidate(t *testing.T) {
	cases := []struct {
		f    func(*Task)
		want string
	}{
		{func(t *Task) { t.ABI = 3 }, "declares abi 3"},
		{func(t *Task) { t.Type = "sort" }, `unknown compaction type "sort"`},
		{func(t *Task) { t.PKType = TypeFloat32 }, "pk_type float32"},
		{func(t *Task) { t.Segments = nil }, "has no segments"},
		{func(t *Task) { t.Segments[0].Role = "x" }, `unknown role "x"`},
		{func(t *Task) { t.Segments[0].Rows = 1 << 32 }, "v1 allows at most 2^32-1"},
		{func(t *Task) { t.Columns[1].FieldID = 100 }, "repeats field 100"},
		{func(t *Task) { t.Columns[1].Type = TypeFixed }, "need a width"},
		{func(t *Task) { t.MemoryGrant = 0 }, "memory_grant is 0"},
		{func(t *Task) { t.BatchRows = 0 }, "batch_rows 0"},
		{func(t *Task) { t.MaxSize = -1 }, "must not be negative"},
	}
	for _, c := range cases {
		task := validTask()
		c.f(task)
		if err := task.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
	if _, err := ParseTask([]byte(`{"abi":1,"pk_type":"int65"}`)); err == nil || !strings.Contains(err.Error(), `unknown column type "int65"`) {
		t.Errorf("bad type name: %v", err)
	}
}

func TestParseVersionedName(t *testing.T) {
	for _, c := range []struct {
		name string
		v    int
		ok   bool
	}{
		{"compact_v1", 1, true}, {"compact_v1_alloc", 1, true}, {"compact_v2_batch", 2, true},
		{"compact_v12", 12, true}, {"compact_v", 0, false}, {"compact_vx_alloc", 0, false},
		{"env", 0, false}, {"compact_v1x", 0, false},
	} {
		v, ok := ParseVersionedName(c.name)
		if v != c.v || ok != c.ok {
			t.Errorf("%s: %d %v", c.name, v, ok)
		}
	}
	if StatusOutOfMemory.String() != "OUT_OF_MEMORY" || Status(9).String() != "STATUS(9)" {
		t.Error("status names")
	}
	if err := Errorf(StatusUnsupported, "no %s", "l0"); err.Error() != "UNSUPPORTED: no l0" {
		t.Errorf("Errorf = %q", err)
	}
}
