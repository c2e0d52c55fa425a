package statslog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/corrupt"
)

// encodeBinary writes the "mpkstats" layout described in binary.go; Milvus
// master writes it, this package only reads it.
func encodeBinary(t *testing.T, list []*Stats) []byte {
	t.Helper()
	le := binary.LittleEndian
	var buf bytes.Buffer
	hdr := make([]byte, 64)
	copy(hdr, BinaryMagic)
	le.PutUint32(hdr[8:], 1)
	le.PutUint32(hdr[12:], uint32(len(list)))
	le.PutUint32(hdr[16:], uint32(list[0].PKType))
	le.PutUint32(hdr[20:], uint32(list[0].FieldID))
	buf.Write(hdr)
	for _, s := range list {
		body, _ := json.Marshal(s.Filter)
		var bf struct {
			K uint32   `json:"k"`
			B []string `json:"b"`
		}
		if err := json.Unmarshal(body, &bf); err != nil {
			t.Fatal(err)
		}
		eh := make([]byte, 64)
		le.PutUint32(eh, uint32(len(bf.B)))
		le.PutUint32(eh[4:], bf.K)
		var bounds []byte
		if s.PKType == schemapb.DataType_Int64 {
			le.PutUint64(eh[8:], uint64(s.Min.Int))
			le.PutUint64(eh[16:], uint64(s.Max.Int))
		} else {
			for _, v := range []string{s.Min.Str, s.Max.Str} {
				bounds = le.AppendUint32(bounds, uint32(len(v)))
				bounds = append(bounds, v...)
			}
			le.PutUint32(eh[8:], uint32(len(bounds)))
		}
		buf.Write(eh)
		buf.Write(bounds)
		for _, b := range bf.B {
			raw, _ := base64.URLEncoding.DecodeString(b)
			buf.Write(raw)
		}
	}
	return buf.Bytes()
}

func TestBinaryFormat(t *testing.T) {
	a := buildInt64(t, 3, 9, 27, 81)
	b := buildInt64(t, -5, 1000)
	got, err := Decode("r/stats_log/1/2/3/100/1", encodeBinary(t, []*Stats{a, b}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Min.Int != 3 || got[0].Max.Int != 81 || got[1].Min.Int != -5 || got[0].Filter.Type() != BlockedBF {
		t.Fatalf("decoded %+v %+v", got[0], got[1])
	}
	for _, pk := range []int64{3, 9, 27, 81} {
		if !got[0].MayContainInt64(pk) {
			t.Fatalf("pk %d lookup wrong", pk)
		}
	}
	if !got[1].MayContainInt64(1000) || got[0].MayContainInt64(82) {
		t.Fatal("range or membership wrong")
	}

	vb, _ := NewBuilder(7, schemapb.DataType_VarChar, 100)
	for _, s := range []string{"apple", "kiwi", "pear"} {
		vb.AddVarChar(s)
	}
	vs, _ := vb.Finish()
	got, err = Decode("r/stats_log/1/2/3/7/55", encodeBinary(t, []*Stats{vs}))
	if err != nil {
		t.Fatal(err)
	}
	if s := got[0]; s.FieldID != 7 || s.Min.Str != "apple" || s.Max.Str != "pear" || !s.MayContainVarChar("kiwi") || s.MayContainVarChar("zebra") {
		t.Fatalf("VarChar binary stats %+v", s)
	}
}

func TestBinaryFormatErrors(t *testing.T) {
	good := encodeBinary(t, []*Stats{buildInt64(t, 1, 2)})
	bad := func(mut func([]byte)) []byte {
		b := bytes.Clone(good)
		mut(b)
		return b
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short":     {good[:20], "shorter than the 64-byte header"},
		"version":   {bad(func(b []byte) { b[8] = 2 }), "unsupported version 2"},
		"pk type":   {bad(func(b []byte) { b[16] = 20 }), "pk type 20"},
		"entries":   {bad(func(b []byte) { b[12] = 2 }), "entry 1 header truncated"},
		"blocks":    {bad(func(b []byte) { b[64] = 9 }), "entry 0 has 9 filter blocks"},
		"truncated": {good[:len(good)-1], "entry 0 has 1 filter blocks, 63 bytes remain"},
		// blobloom cannot honour k below 2: it would test bits Milvus never set.
		"k": {bad(func(b []byte) { b[68] = 1 }), "entry 0: k = 1 out of range 2..1024"},
	}
	for name, c := range cases {
		_, err := Decode("k/7", c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "k/7") || !errors.Is(err, corrupt.Err) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}
