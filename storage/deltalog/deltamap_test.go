package deltalog

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func TestMapInt64(t *testing.T) {
	a := &Deletes{}
	_ = a.AppendInt64(5, 100)
	_ = a.AppendInt64(-3, 50)
	_ = a.AppendInt64(5, 90) // smaller ts later: max wins
	b := &Deletes{}
	_ = b.AppendInt64(5, 120)
	_ = b.AppendInt64(7, 10)
	m, err := BuildMap(schemapb.DataType_Int64, a, &Deletes{}, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 || m.PKType() != schemapb.DataType_Int64 {
		t.Fatalf("len %d type %v", m.Len(), m.PKType())
	}
	for pk, want := range map[int64]uint64{5: 120, -3: 50, 7: 10} {
		if got, ok := m.Int64TS(pk); !ok || got != want {
			t.Errorf("pk %d: ts %d %v, want %d", pk, got, ok, want)
		}
	}
	if _, ok := m.Int64TS(6); ok {
		t.Error("pk 6 reported deleted")
	}
	// Strict rule: a row written at the delete ts (upsert) survives.
	for _, c := range []struct {
		pk      int64
		rowTS   uint64
		deleted bool
	}{{5, 119, true}, {5, 120, false}, {5, 121, false}, {-3, 0, true}, {6, 0, false}} {
		if got := m.DeletedInt64(c.pk, c.rowTS); got != c.deleted {
			t.Errorf("DeletedInt64(%d, %d) = %v", c.pk, c.rowTS, got)
		}
	}
	if m.MemorySize() != 3*16 {
		t.Errorf("MemorySize %d, want 48", m.MemorySize())
	}
}

func TestMapVarCharMatchesGoMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ref := map[string]uint64{}
	var logs []*Deletes
	for l := 0; l < 4; l++ {
		d := &Deletes{}
		for i := 0; i < 2000; i++ {
			pk := fmt.Sprintf("k%d", r.IntN(3000))
			if i%500 == 0 {
				pk = "" // the empty pk is a valid key
			}
			ts := uint64(r.IntN(1000) + 1)
			_ = d.AppendVarChar(pk, ts)
			ref[pk] = max(ref[pk], ts)
		}
		logs = append(logs, d)
	}
	m, err := BuildMap(schemapb.DataType_VarChar, logs...)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != len(ref) {
		t.Fatalf("len %d, want %d", m.Len(), len(ref))
	}
	for pk, want := range ref {
		if got, ok := m.VarCharTS(pk); !ok || got != want {
			t.Fatalf("pk %q: %d %v, want %d", pk, got, ok, want)
		}
		if m.DeletedVarChar(pk, want) || !m.DeletedVarChar(pk, want-1) {
			t.Fatalf("pk %q: strict rule broken", pk)
		}
	}
	for _, pk := range []string{"k", "k3000", "zzz", "k1x"} {
		if _, ok := m.VarCharTS(pk); ok {
			t.Errorf("absent pk %q found", pk)
		}
	}
}

func TestBuildMapErrors(t *testing.T) {
	if _, err := BuildMap(schemapb.DataType_Int64, genDeletes(schemapb.DataType_Int64, 2), genDeletes(schemapb.DataType_VarChar, 2)); err == nil ||
		!strings.Contains(err.Error(), "input 1 has VarChar pks, want Int64") {
		t.Errorf("mixed pk types: %v", err)
	}
	if _, err := BuildMap(schemapb.DataType_Float); err == nil {
		t.Error("Float map built")
	}
	m, err := BuildMap(schemapb.DataType_VarChar)
	if err != nil || m.Len() != 0 || m.DeletedVarChar("a", 0) {
		t.Errorf("empty map: %v", err)
	}
}

// TestMixedFormats reads one segment whose deltalogs use both encodings, the
// case Milvus 2.6 could not decode in one batch.
func TestMixedFormats(t *testing.T) {
	for _, pt := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		old := genDeletes(pt, 100)  // ts 1000..1099
		newer := genDeletes(pt, 50) // same pks, ts 1000..1049
		for i := range newer.Timestamps {
			newer.Timestamps[i] += 5000
		}
		var logs []*Deletes
		for i, f := range []Format{FormatJSON, FormatMultiField} {
			src := []*Deletes{old, newer}[i]
			d, gf, err := readBytes(fmt.Sprintf("%s-%d", testKey, i), encode(t, src, f))
			if err != nil || gf != f {
				t.Fatalf("%v: %v %v", pt, gf, err)
			}
			logs = append(logs, d)
		}
		m, err := BuildMap(pt, logs...)
		if err != nil {
			t.Fatal(err)
		}
		if m.Len() != 100 {
			t.Fatalf("%v: %d distinct pks", pt, m.Len())
		}
		for i := 0; i < 100; i++ {
			want := uint64(1000 + i)
			if i < 50 {
				want += 5000
			}
			var got uint64
			if pt == schemapb.DataType_Int64 {
				got, _ = m.Int64TS(old.IntPKs[i])
			} else {
				got, _ = m.VarCharTS(old.StrPKs[i])
			}
			if got != want {
				t.Fatalf("%v: pk #%d ts %d, want %d", pt, i, got, want)
			}
		}
	}
}
