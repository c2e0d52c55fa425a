package deltalog

import (
	"bytes"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func FuzzRead(f *testing.F) {
	for _, fm := range []Format{FormatJSON, FormatMultiField} {
		for _, pt := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			f.Add(encode(f, genDeletes(pt, 3), fm))
		}
	}
	f.Add(jsonRows(f, "5,100", `{ "ts": 7, "pkType": 5, "pk": 9 }`))
	f.Add(jsonRows(f, `{"pk":"a\"b","ts":3,"pkType":21}`, `{"pk":1,"ts":-5,"pkType":5}`))
	f.Add(rawFile(f, multiDesc(), 2, []string{"pk", "ts"}, int64Array(1, 2), int64Array(5, -5)))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, fm, err := Read("fuzz/delta_log/1/2/3/4", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if d.check() != nil && d.Len() > 0 {
			t.Fatalf("inconsistent deletes from a successful read: %v", d.check())
		}
		if d.Len() == 0 {
			return
		}
		if _, err := BuildMap(d.PKType, d); err != nil {
			t.Fatalf("map of decoded deletes: %v", err)
		}
		// Whatever decodes must re-encode and decode to the same records.
		for i, ts := range d.Timestamps {
			if ts == 0 || ts > 1<<63-1 {
				d.Timestamps[i] = 1
			}
		}
		var buf bytes.Buffer
		if _, err := Write(&buf, Meta{Timestamp: 1}, d, fm); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, _, err := Read("again", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil || again.Len() != d.Len() {
			t.Fatalf("re-read: %v (%d vs %d rows)", err, again.Len(), d.Len())
		}
	})
}
