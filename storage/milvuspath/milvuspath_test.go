package milvuspath

import (
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	cases := []struct{ got, want string }{
		{InsertLog("files", 1, 2, 3, 100, 7), "files/insert_log/1/2/3/100/7"},
		{InsertLog("", 449, 450, 451, 0, 452), "insert_log/449/450/451/0/452"},
		{InsertLog("files/", 1, 2, 3, 1, 9), "files/insert_log/1/2/3/1/9"},
		{InsertLog("/var/lib/milvus/data", 1, 2, 3, 101, 9), "/var/lib/milvus/data/insert_log/1/2/3/101/9"},
		{DeltaLog("files", 1, 2, 3, 44), "files/delta_log/1/2/3/44"},
		{StatsLog("a-bucket/files", 1, 2, 3, 100, 1), "a-bucket/files/stats_log/1/2/3/100/1"},
		{BM25Log("files", 1, 2, 3, 102, 5), "files/bm25_stats/1/2/3/102/5"},
		{InsertLog("r", 454470381133578240, 454470381133578241, 454470381133578248, 100, 454470381133578300),
			"r/insert_log/454470381133578240/454470381133578241/454470381133578248/100/454470381133578300"},
		{InsertLog("r", 1, 2, 3, 4, 9223372036854775807), "r/insert_log/1/2/3/4/9223372036854775807"},
		{SegmentPrefix("files", KindDelta, 1, 2, 3), "files/delta_log/1/2/3/"},
		{SegmentPrefix("", KindInsert, 1, 2, 3), "insert_log/1/2/3/"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		key  string
		want Key
	}{
		{"files/insert_log/1/2/3/100/7", Key{KindInsert, "files", 1, 2, 3, 100, 7}},
		{"insert_log/1/2/3/0/7", Key{KindInsert, "", 1, 2, 3, 0, 7}},
		{"/insert_log/1/2/3/0/7", Key{KindInsert, "/", 1, 2, 3, 0, 7}},
		{"/data/m/delta_log/1/2/3/8", Key{KindDelta, "/data/m", 1, 2, 3, 0, 8}},
		{"files/stats_log/1/2/3/100/1", Key{KindStats, "files", 1, 2, 3, 100, 1}},
		{"files/bm25_stats/1/2/3/102/5", Key{KindBM25, "files", 1, 2, 3, 102, 5}},
		// A kind name inside the root is not mistaken for the kind.
		{"insert_log/delta_log/1/2/3/4", Key{KindDelta, "insert_log", 1, 2, 3, 0, 4}},
		{"x/stats_log/y/insert_log/1/2/3/4/5", Key{KindInsert, "x/stats_log/y", 1, 2, 3, 4, 5}},
	}
	for _, c := range cases {
		got, err := Parse(c.key)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.key, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.key, got, c.want)
		}
		if s := got.String(); s != c.key {
			t.Errorf("Parse(%q).String() = %q", c.key, s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ key, want string }{
		{"", "empty key"},
		{"files/index_files/1/2/3/4/5", "not a Milvus log key"},
		{"files/insert_log/1/2/3/4", "has 4 elements after insert_log, want 5 (collection/partition/segment/field/log IDs)"},
		{"files/insert_log/1/2/3/4/5/6", "has 6 elements after insert_log, want 5"},
		{"files/delta_log/1/2/3/4/5", "has 5 elements after delta_log, want 4 (collection/partition/segment/log IDs)"},
		{"files/delta_log/1/2/x/4", `bad segment ID "x": not a non-negative decimal integer`},
		{"files/insert_log/1/2/3/-4/5", `bad field ID "-4"`},
		{"files/insert_log/1/2/3/4/05", `bad log ID "05": leading zero`},
		{"files/insert_log/+1/2/3/4/5", `bad collection ID "+1"`},
		{"files/insert_log/1/9223372036854775808/3/4/5", `bad partition ID "9223372036854775808": out of int64 range`},
		{"files//insert_log/1/2/3/4/5", "not a clean slash-separated path"},
		{"files/insert_log/1/2/3/4/5/", "not a clean"},
		{"./insert_log/1/2/3/4/5", "not a clean"},
		{"files/insert_log/1/2/3/4/", "not a clean"},
		{"files/stats_log", "has 0 elements after stats_log"},
	}
	for _, c := range cases {
		_, err := Parse(c.key)
		if err == nil {
			t.Errorf("Parse(%q): no error, want %q", c.key, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || (c.key != "" && !strings.Contains(err.Error(), c.key)) {
			t.Errorf("Parse(%q) error %q, want it to contain %q and the key", c.key, err, c.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	roots := []string{"", "files", "/abs/root", "bucket/deep/root", "/"}
	ids := []int64{0, 1, 100, 1 << 40, 9223372036854775807}
	for _, root := range roots {
		for _, kind := range []Kind{KindInsert, KindDelta, KindStats, KindBM25} {
			for i, id := range ids {
				k := Key{Kind: kind, Root: root, CollectionID: id, PartitionID: ids[(i+1)%len(ids)],
					SegmentID: ids[(i+2)%len(ids)], LogID: ids[(i+4)%len(ids)]}
				if kind.HasField() {
					k.FieldID = ids[(i+3)%len(ids)]
				}
				got, err := Parse(k.String())
				if err != nil {
					t.Fatalf("Parse(%q): %v", k.String(), err)
				}
				if got != k {
					t.Fatalf("round trip of %+v gave %+v", k, got)
				}
			}
		}
	}
}

func TestKind(t *testing.T) {
	if KindBM25.String() != "bm25_stats" || Kind(42).String() != "Kind(42)" {
		t.Errorf("Kind.String: %q %q", KindBM25, Kind(42))
	}
	if KindDelta.HasField() || !KindStats.HasField() {
		t.Error("HasField wrong")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"files/insert_log/1/2/3/100/7", "delta_log/1/2/3/4", "/stats_log/1/2/3/4/1",
		"a/bm25_stats/0/0/0/0/0", "files/insert_log/1/2/3/4", "x//delta_log/1/2/3/4",
		"files/insert_log/01/2/3/4/5", "insert_log/delta_log/1/2/3/4", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := Parse(key)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "milvuspath: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if s := k.String(); s != key {
			t.Fatalf("Parse(%q).String() = %q", key, s)
		}
		if k.Kind < KindInsert || k.Kind > KindBM25 || k.CollectionID < 0 || k.PartitionID < 0 ||
			k.SegmentID < 0 || k.FieldID < 0 || k.LogID < 0 || (!k.Kind.HasField() && k.FieldID != 0) {
			t.Fatalf("Parse(%q) = %+v: invalid fields", key, k)
		}
	})
}
