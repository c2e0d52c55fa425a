package statslog

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/zeebo/xxh3"

	"github.com/compacthost/compacthost/storage/corrupt"
)

const key = "files/stats_log/1/2/3/100/42"

func buildInt64(t testing.TB, pks ...int64) *Stats {
	t.Helper()
	b, err := NewBuilder(100, schemapb.DataType_Int64, len(pks))
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range pks {
		b.AddInt64(pk)
	}
	s, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeOneT(t *testing.T, k string, data []byte) *Stats {
	t.Helper()
	list, err := Decode(k, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("got %d stats, want 1", len(list))
	}
	return list[0]
}

func TestXXH3Vector(t *testing.T) {
	// XXH3-64 of the empty input with seed 0, from the xxHash reference.
	if got := xxh3.Hash(nil); got != 0x2D06800538D394C2 {
		t.Fatalf("xxh3(\"\") = %#x", got)
	}
}

func TestInt64RoundTrip(t *testing.T) {
	pks := []int64{-7, 0, 42, 1 << 40, math.MaxInt64, math.MinInt64 + 1}
	s := buildInt64(t, pks...)
	data, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf(`{"fieldID":100,"max":%d,"min":%d,"bfType":4,"bf":{"k":`, int64(math.MaxInt64), int64(math.MinInt64+1))
	if !strings.HasPrefix(string(data), prefix) {
		t.Fatalf("encoding starts %.120s, want prefix %s", data, prefix)
	}
	suffix := fmt.Sprintf(`]},"pkType":5,"maxPk":%d,"minPk":%d}`, int64(math.MaxInt64), int64(math.MinInt64+1))
	if !strings.HasSuffix(string(data), suffix) {
		t.Fatalf("encoding ends %s, want suffix %s", data[len(data)-80:], suffix)
	}
	got := decodeOneT(t, key, data)
	if got.FieldID != 100 || got.PKType != schemapb.DataType_Int64 || !got.HasRange ||
		got.Min.Int != math.MinInt64+1 || got.Max.Int != math.MaxInt64 || got.Filter.Type() != BlockedBF {
		t.Fatalf("decoded %+v", got)
	}
	for _, pk := range pks {
		if !got.MayContainInt64(pk) {
			t.Errorf("pk %d missing after round trip", pk)
		}
	}
	if got.MayContainInt64(math.MinInt64) {
		t.Error("pk below min reported present")
	}
	if got.MayContainVarChar("42") {
		t.Error("VarChar lookup on Int64 stats reported present")
	}
	again, err := Encode(got)
	if err != nil || string(again) != string(data) {
		t.Fatalf("re-encoding differs (err %v)", err)
	}
}

func TestVarCharRoundTripCompound(t *testing.T) {
	var list []*Stats
	for seg := 0; seg < 3; seg++ {
		b, err := NewBuilder(101, schemapb.DataType_VarChar, 500)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			b.AddVarChar(fmt.Sprintf("s%d-%04d<&>", seg, i))
		}
		s, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, s)
	}
	data, err := EncodeList(list)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != '[' {
		t.Fatalf("compound encoding starts with %q", data[0])
	}
	got, err := Decode("files/stats_log/1/2/3/101/1", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d stats", len(got))
	}
	for seg, s := range got {
		wantMin, wantMax := fmt.Sprintf("s%d-0000<&>", seg), fmt.Sprintf("s%d-0499<&>", seg)
		if s.PKType != schemapb.DataType_VarChar || s.Min.Str != wantMin || s.Max.Str != wantMax || !s.HasRange {
			t.Fatalf("stats[%d] = %+v", seg, s)
		}
		for i := 0; i < 500; i++ {
			if pk := fmt.Sprintf("s%d-%04d<&>", seg, i); !s.MayContain(PK{Str: pk}) {
				t.Fatalf("stats[%d] lost %q", seg, pk)
			}
		}
		if s.MayContainVarChar("zzz") || s.MayContainInt64(1) {
			t.Fatalf("stats[%d]: out-of-range or wrong-type key reported present", seg)
		}
	}
	// A single-object file under a compound key is rejected, as Milvus does.
	one, _ := Encode(list[0])
	if _, err := Decode("a/b/1", one); err == nil || !strings.Contains(err.Error(), "a/b/1") {
		t.Fatalf("object under compound key: err = %v", err)
	}
}

// TestBlockedLayout re-derives the filter bits from the layout in
// milvus-formats.md §9.8 and compares them with what the builder encodes.
func TestBlockedLayout(t *testing.T) {
	pks := []int64{1, 2, 3, 1000}
	s := buildInt64(t, pks...)
	data, _ := Encode(s)
	var w struct {
		BF struct {
			K uint     `json:"k"`
			B []string `json:"b"`
		} `json:"bf"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	nb := uint64(len(w.BF.B))
	want := make([][16]uint32, nb)
	for _, pk := range pks {
		k := Int64Key(pk)
		h := xxh3.Hash(k[:])
		h1, h2 := uint32(h>>32), uint32(h)
		blk := &want[(uint64(h2)*nb)>>32]
		for i := uint32(1); i < uint32(w.BF.K); i++ {
			h1 += h2
			h2 += i
			blk[(h1/32)%16] |= 1 << (h1 % 32)
		}
	}
	for i, enc := range w.BF.B {
		var raw [64]byte
		for j, word := range want[i] {
			binary.LittleEndian.PutUint32(raw[4*j:], word)
		}
		if exp := base64.URLEncoding.EncodeToString(raw[:]); exp != enc {
			t.Fatalf("block %d = %s, want %s", i, enc, exp)
		}
	}
	// Capacity 4 at FPR 0.001: c = 17 bits/key -> 68 bits -> one block; k = 89.
	if nb != 1 || w.BF.K != 89 {
		t.Fatalf("sizing: %d blocks, k=%d", nb, w.BF.K)
	}
}

func TestBasicBFFromLibrary(t *testing.T) {
	lib := bloom.NewWithEstimates(1000, 0.001)
	for i := int64(0); i < 1000; i++ {
		k := Int64Key(i * 3)
		lib.Add(k[:])
	}
	bf, err := lib.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, bfType := range []string{"", `"bfType":3,`} {
		doc := fmt.Sprintf(`{"fieldID":7,"max":2997,"min":0,%s"bf":%s}`, bfType, bf)
		s := decodeOneT(t, key, []byte(doc))
		if s.Filter.Type() != BasicBF || s.PKType != schemapb.DataType_Int64 || s.Max.Int != 2997 {
			t.Fatalf("%q: decoded %+v", bfType, s)
		}
		absent := 0
		for i := int64(0); i < 3000; i++ {
			k := Int64Key(i)
			if lib.Test(k[:]) != s.Filter.Test(k[:]) {
				t.Fatalf("pk %d: library says %v, decoded filter disagrees", i, lib.Test(k[:]))
			}
			if i%3 == 0 && !s.MayContainInt64(i) {
				t.Fatalf("pk %d lost", i)
			}
			if !s.MayContainInt64(i) {
				absent++
			}
		}
		if absent < 1900 {
			t.Fatalf("only %d of 2000 absent keys rejected", absent)
		}
	}
}

// Only a stats object that declares itself always-true (bfType 2, or
// Milvus's "unsupported" marker 1, whatever the body) reads as one.
func TestAlwaysTrueDeclared(t *testing.T) {
	block := base64.URLEncoding.EncodeToString(make([]byte, 64))
	cases := map[string]string{
		"bfType 2":             `"bfType":2,"bf":{}`,
		"bfType 2, no bf":      `"bfType":2`,
		"bfType 1":             `"bfType":1,"bf":{}`,
		"bfType 1, blocked bf": `"bfType":1,"bf":{"k":3,"b":["` + block + `"]}`,
	}
	for name, body := range cases {
		s := decodeOneT(t, key, []byte(`{"fieldID":1,"max":10,"min":5,`+body+`}`))
		at, ok := s.Filter.(AlwaysTrueFilter)
		if !ok || at.Reason == "" {
			t.Errorf("%s: filter %#v, want AlwaysTrueFilter with a reason", name, s.Filter)
			continue
		}
		if !s.MayContainInt64(7) || s.MayContainInt64(11) {
			t.Errorf("%s: range rule not applied around an always-true filter", name)
		}
	}
	// An AlwaysTrue stats object re-encodes and reads back as AlwaysTrue.
	data, err := Encode(&Stats{FieldID: 1, PKType: schemapb.DataType_Int64, Filter: AlwaysTrueFilter{}})
	if err != nil {
		t.Fatal(err)
	}
	if s := decodeOneT(t, key, data); s.Filter.Type() != AlwaysTrue || !s.MayContainInt64(math.MinInt64) || !s.MayContainInt64(math.MaxInt64) {
		t.Fatalf("re-read %s as %+v", data, s)
	}
}

// wantCorrupt asserts that decoding doc under k fails with an error that
// names k and want and matches corrupt.Err.
func wantCorrupt(t *testing.T, name, k, doc, want string) {
	t.Helper()
	list, err := Decode(k, []byte(doc))
	if err == nil {
		t.Errorf("%s: decoded %d stats (filter %v), want an error", name, len(list), list[0].Filter.Type())
		return
	}
	if !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), want) || !errors.Is(err, corrupt.Err) {
		t.Errorf("%s: err = %v, want it to name %s and %q and match corrupt.Err", name, err, k, want)
	}
}

// A bloom filter that does not decode to what its fields state is an error
// naming the object; it used to become an always-true filter, which made L0
// route deletes to every target.
func TestCorruptFilter(t *testing.T) {
	block := base64.URLEncoding.EncodeToString(make([]byte, 64))
	cases := map[string]struct{ body, want string }{
		"bf missing":      {`"bfType":4`, `key "bf" missing`},
		"bf null":         {`"bfType":4,"bf":null`, `key "bf" missing`},
		"basic bf absent": {`"pkType":5`, `key "bf" missing`},
		"unknown bfType":  {`"bfType":7,"bf":{}`, `key "bfType": 7`},
		"bfType 0":        {`"bfType":0,"bf":{}`, `key "bfType": 0`},
		"bf string":       {`"bfType":4,"bf":"garbage"`, `key "bf": BlockedBloomFilter body`},
		"no blocks":       {`"bfType":4,"bf":{"k":3,"b":[]}`, "no blocks"},
		"blocks null":     {`"bfType":4,"bf":{"k":3,"b":null}`, "no blocks"},
		"short block":     {`"bfType":4,"bf":{"k":3,"b":["AAAA"]}`, "block 0 is not 64"},
		"long block":      {`"bfType":4,"bf":{"k":3,"b":["` + block + `AAAA"]}`, "block 0 is not 64"},
		"k missing":       {`"bfType":4,"bf":{"b":["` + block + `"]}`, "missing k"},
		"k 1":             {`"bfType":4,"bf":{"k":1,"b":["` + block + `"]}`, "k = 1 out of range"},
		"k huge":          {`"bfType":4,"bf":{"k":100000,"b":["` + block + `"]}`, "k = 100000 out of range"},
		"basic no m":      {`"bfType":3,"bf":{"k":3,"b":"AAAAAAAAAAA="}`, "needs m, k and b"},
		"basic m 0":       {`"bfType":3,"bf":{"m":0,"k":3,"b":"AAAAAAAAAAA="}`, "m = 0"},
		"basic huge len":  {`"bfType":3,"bf":{"m":64,"k":3,"b":"_____________________w=="}`, "bitset states"},
		"basic bad b64":   {`"bfType":3,"bf":{"m":64,"k":3,"b":"!!"}`, "bitset: illegal base64"},
		"basic m too big": {`"bfType":3,"bf":{"m":65,"k":3,"b":"` + basicBits(64, 1) + `"}`, "m = 65 but the bitset holds 64 bits"},
		"basic m small":   {`"bfType":3,"bf":{"m":60,"k":3,"b":"` + basicBits(64, 1) + `"}`, "m = 60 but the bitset holds 64 bits"},
	}
	for name, c := range cases {
		wantCorrupt(t, name, key, `{"fieldID":1,"max":10,"min":5,`+c.body+`}`, c.want)
	}
}

// basicBits is a BasicBF bitset: its bit length, then words zero words.
func basicBits(length uint64, words int) string {
	b := binary.BigEndian.AppendUint64(nil, length)
	return base64.URLEncoding.EncodeToString(append(b, make([]byte, 8*words)...))
}

// One flipped, dropped or added base64 character in a real filter, blocked
// or BasicBF, single or compound file, is an error naming the object.
func TestFilterDamage(t *testing.T) {
	pks := make([]int64, 2000)
	for i := range pks {
		pks[i] = int64(i) * 7
	}
	blockedDoc, err := Encode(buildInt64(t, pks...))
	if err != nil {
		t.Fatal(err)
	}
	lib := bloom.NewWithEstimates(2000, 0.001)
	for _, pk := range pks {
		k := Int64Key(pk)
		lib.Add(k[:])
	}
	bf, err := lib.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	basicDoc := fmt.Sprintf(`{"fieldID":100,"max":13993,"min":0,"bfType":3,"bf":%s}`, bf)
	for _, d := range []struct {
		name, doc, marker, want string
	}{
		{"blocked", string(blockedDoc), `"b":["`, "block 0 is not 64 base64url bytes"},
		{"basic", basicDoc, `"b":"`, "bitset"},
	} {
		at := strings.Index(d.doc, d.marker) + len(d.marker)
		end := at + strings.IndexByte(d.doc[at:], '"') // end of the first block or bitset
		last := end - 1
		for last > at && d.doc[last] == '=' {
			last--
		}
		damage := map[string]string{
			"flip":         d.doc[:at+10] + "+" + d.doc[at+11:],
			"flip to std":  d.doc[:at+20] + "/" + d.doc[at+21:],
			"flip padding": d.doc[:last] + "B" + d.doc[last+1:],
			"truncate":     d.doc[:at+4] + d.doc[at+8:],
			"lengthen":     d.doc[:at] + "AAAA" + d.doc[at:],
		}
		for name, doc := range damage {
			wantCorrupt(t, d.name+" "+name, key, doc, d.want)
			wantCorrupt(t, d.name+" "+name+" compound", "x/stats_log/1/2/3/100/1", "["+doc+"]", "stats[0]")
		}
		// The undamaged object decodes and holds every pk.
		s := decodeOneT(t, key, []byte(d.doc))
		for _, pk := range pks {
			if !s.MayContainInt64(pk) {
				t.Fatalf("%s: pk %d lost", d.name, pk)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"fieldID":1,`, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`{"max":1,"min":0}`, `"fieldID" missing`},
		{`{"fieldID":"x","max":1,"min":0}`, `key "fieldID"`},
		{`{"fieldID":1.5}`, `key "fieldID"`},
		{`{"fieldID":1,"pkType":"5"}`, `key "pkType"`},
		{`{"fieldID":1,"pkType":20}`, `key "pkType": 20`},
		{`{"fieldID":1,"max":"9","min":0}`, `key "max"`},
		{`{"fieldID":1,"max":9,"min":0,"maxPk":"9"}`, `key "maxPk"`},
		{`{"fieldID":1,"pkType":21,"maxPk":9,"minPk":"a"}`, `key "maxPk"`},
		{`{"fieldID":1,"pkType":21,"maxPk":"b","minPk":true}`, `key "minPk"`},
		{`{"fieldID":1,"max":1,"min":0,"bfType":"4"}`, `key "bfType"`},
	}
	for _, c := range cases {
		_, err := Decode(key, []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v, want it to name %s and %q", c.doc, err, key, c.want)
		}
	}
	list := []struct{ doc, want string }{
		{`{"fieldID":1}`, "not a JSON array"},
		{`[{"fieldID":1,"max":1,"min":0,"bfType":2},null]`, "stats[1]: not a JSON object"},
		{`[{"fieldID":1,"max":1,"min":0,"bfType":2},{"fieldID":"z"}]`, `stats[1]: key "fieldID"`},
	}
	for _, c := range list {
		_, err := Decode("x/1", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x/1") {
			t.Errorf("%s: err = %v, want it to name x/1 and %q", c.doc, err, c.want)
		}
	}
	if got, err := Decode(key, []byte("  ")); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v, %v", got, err)
	}
}

func TestLegacyInt64Bounds(t *testing.T) {
	// Old Milvus wrote only max/min; newer writers 0/0 there plus maxPk/minPk.
	s := decodeOneT(t, key, []byte(`{"fieldID":1,"max":50,"min":10,"bfType":2,"bf":{}}`))
	if !s.HasRange || s.Min.Int != 10 || s.Max.Int != 50 {
		t.Fatalf("legacy bounds: %+v", s)
	}
	s = decodeOneT(t, key, []byte(`{"fieldID":1,"max":0,"min":0,"bfType":2,"pkType":5,"maxPk":50,"minPk":-10}`))
	if s.Min.Int != -10 || s.Max.Int != 50 {
		t.Fatalf("maxPk/minPk must override max/min: %+v", s)
	}
	s = decodeOneT(t, key, []byte(`{"fieldID":1,"bfType":2,"pkType":0}`))
	if s.HasRange || s.PKType != schemapb.DataType_Int64 || !s.MayContainInt64(-99) {
		t.Fatalf("no bounds must mean no range check: %+v", s)
	}
	s = decodeOneT(t, key, []byte(`{"fieldID":1,"bfType":2,"pkType":21,"maxPk":"m"}`))
	if s.HasRange || !s.MayContainVarChar("zz") {
		t.Fatalf("half a VarChar range must mean no range check: %+v", s)
	}
}

func TestBuilderMisuse(t *testing.T) {
	if _, err := NewBuilder(1, schemapb.DataType_Float, 10); err == nil {
		t.Error("Float pk accepted")
	}
	if _, err := NewBuilderFPR(1, schemapb.DataType_Int64, 10, 0); err == nil {
		t.Error("FPR 0 accepted")
	}
	b, _ := NewBuilder(1, schemapb.DataType_Int64, 10)
	b.AddVarChar("x")
	if _, err := b.Finish(); err == nil || !strings.Contains(err.Error(), "VarChar pk added to Int64") {
		t.Errorf("mismatch error = %v", err)
	}
	if _, err := Encode(&Stats{PKType: schemapb.DataType_Int64}); err == nil {
		t.Error("nil filter encoded")
	}
	vb, _ := NewBuilder(9, schemapb.DataType_VarChar, 1)
	if s, _ := vb.Finish(); s != nil {
		if _, err := Encode(s); err == nil || !strings.Contains(err.Error(), "VarChar stats without a pk range") {
			t.Errorf("empty VarChar stats: %v", err)
		}
	}
	if _, err := EncodeList([]*Stats{nil}); err == nil || !strings.Contains(err.Error(), "stats[0]") {
		t.Errorf("nil list entry: %v", err)
	}
}

func TestSelectKeys(t *testing.T) {
	keys := []string{"r/stats_log/1/2/3/100/7", "r/stats_log/1/2/3/100/1", "r/stats_log/1/2/3/100/9"}
	if got := SelectKeys(keys); len(got) != 1 || got[0] != keys[1] {
		t.Errorf("with compound: %v", got)
	}
	if got := SelectKeys([]string{keys[0], keys[2]}); len(got) != 2 {
		t.Errorf("without compound: %v", got)
	}
}

func TestFPR(t *testing.T) {
	const n = 100_000
	b, _ := NewBuilder(100, schemapb.DataType_Int64, n)
	for i := int64(0); i < n; i++ {
		b.AddInt64(i * 2)
	}
	s, _ := b.Finish()
	data, _ := Encode(s)
	s = decodeOneT(t, key, data)
	s.HasRange = false // measure the filter alone
	fp := 0
	for i := int64(0); i < n; i++ {
		if !s.MayContainInt64(i * 2) {
			t.Fatalf("false negative for %d", i*2)
		}
		if s.MayContainInt64(i*2 + 1) {
			fp++
		}
	}
	rate := float64(fp) / n
	t.Logf("measured FPR %.5f over %d absent keys, %d bytes of JSON", rate, n, len(data))
	if rate > 0.002 {
		t.Fatalf("FPR %.5f above 0.002", rate)
	}
}
