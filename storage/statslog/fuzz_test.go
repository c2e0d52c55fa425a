package statslog

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func FuzzDecode(f *testing.F) {
	one := buildInt64(f, 1, 5, 9)
	single, _ := Encode(one)
	vb, _ := NewBuilder(101, schemapb.DataType_VarChar, 3)
	vb.AddVarChar("a")
	vs, _ := vb.Finish()
	list, _ := EncodeList([]*Stats{one, vs})
	lib := bloom.NewWithEstimates(10, 0.01)
	lib.AddString("x")
	basicBF, _ := lib.MarshalJSON()
	f.Add(false, single)
	f.Add(true, list)
	f.Add(false, []byte(fmt.Sprintf(`{"fieldID":1,"max":3,"min":1,"bf":%s}`, basicBF)))
	f.Add(false, []byte(`{"fieldID":1,"pkType":21,"maxPk":"z","minPk":"a","bfType":2,"bf":{}}`))
	f.Add(true, []byte(`[{"fieldID":1,"max":1,"min":0,"bfType":4,"bf":{"k":3,"b":[]}}]`))
	// Damaged filters: a flipped base64 character, a block one group short, a
	// BasicBF bitset one word longer than it states.
	at := bytes.Index(single, []byte(`"b":["`)) + 6
	flipped := bytes.Clone(single)
	flipped[at+10] = '+'
	f.Add(false, flipped)
	f.Add(false, append(bytes.Clone(single[:at+4]), single[at+8:]...))
	f.Add(false, []byte(`{"fieldID":1,"max":3,"min":1,"bfType":3,"bf":{"m":64,"k":3,"b":"`+basicBits(64, 2)+`"}}`))
	bin := []byte(BinaryMagic + "\x01\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00d\x00\x00\x00")
	bin = append(bin, make([]byte, 40)...)
	entry := make([]byte, 64)
	entry[0], entry[4] = 1, 7
	bin = append(append(bin, entry...), make([]byte, 64)...)
	f.Add(false, bin)
	f.Fuzz(func(t *testing.T, compound bool, data []byte) {
		k := "fuzz/stats_log/1/2/3/100/7"
		if compound {
			k = "fuzz/stats_log/1/2/3/100/1"
		}
		got, err := Decode(k, data)
		if err != nil {
			return
		}
		for _, s := range got {
			if s.Filter == nil {
				t.Fatal("decoded stats with nil filter")
			}
			s.MayContainInt64(1)
			s.MayContainVarChar("a")
			unencodable := s.PKType == schemapb.DataType_VarChar && !s.HasRange
			if _, err := Encode(s); err != nil && !unencodable {
				t.Fatalf("decoded stats do not re-encode: %v", err)
			}
		}
	})
}
