package bench

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// EncodeInsertSized is a prototype of the allocation fix proposed for
// storage/binlog.EncodeInsert and segwrite's flush (BENCH.md, "Then make it
// fast"): the same bytes, but the Parquet payload buffer is sized once from
// the column's uncompressed size instead of growing by doubling, and the
// binlog is assembled in one buffer of the final size instead of a second
// doubling bytes.Buffer. The CPU profile of the headline mix shows the two
// growths (memclr and memmove in bytes.growSlice) as its largest single
// cost. It lives here, not in storage/binlog, because that package belongs
// to another engineer; the differential test checks it against EncodeInsert
// byte for byte.
func EncodeInsertSized(d binlog.Descriptor, field *schemapb.FieldSchema, col arrow.Array, opts binlog.WriterOptions) ([]byte, binlog.Written, error) {
	mem := binlog.MemorySize(col, field)
	// Parquet adds page headers and statistics; a dictionary attempt on
	// unique values can add a little more. Too small only costs a growth.
	payload := bytes.NewBuffer(make([]byte, 0, mem+mem/16+64<<10))
	if err := binlog.EncodeParquet(payload, field, col, opts); err != nil {
		return nil, binlog.Written{}, fmt.Errorf("binlog encode: %w", err)
	}
	d.FieldID = field.GetFieldID()
	d.PayloadType = field.GetDataType()
	d.Extras = maps.Clone(d.Extras)
	if d.Extras == nil {
		d.Extras = map[string]any{}
	}
	d.SetOriginalSize(mem)
	d.Extras[binlog.ExtraNullable] = field.GetNullable()
	ev := binlog.Event{Type: binlog.InsertEvent, Timestamp: d.Timestamp, StartTimestamp: d.StartTimestamp, EndTimestamp: d.EndTimestamp}
	if d.StartTimestamp == 0 {
		ev.StartTimestamp = 1
	}
	if d.EndTimestamp == 0 {
		ev.EndTimestamp = 1
	}
	out := bytes.NewBuffer(make([]byte, 0, payload.Len()+4096))
	n, err := binlog.WriteFile(out, d, ev, payload.Bytes())
	if err != nil {
		return nil, binlog.Written{Bytes: n}, err
	}
	return out.Bytes(), binlog.Written{Bytes: n, MemorySize: mem, Rows: int64(col.Len())}, nil
}
