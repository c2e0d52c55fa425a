package deltalog

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

const testKey = "files/delta_log/1/2/3/444"

var testMeta = Meta{CollectionID: 1, PartitionID: 2, SegmentID: 3, Timestamp: 455000000000000000}

// genDeletes makes n deletes; VarChar pks are "pk-<i*7>", timestamps rise from 1000.
func genDeletes(pkType schemapb.DataType, n int) *Deletes {
	d := &Deletes{}
	for i := 0; i < n; i++ {
		ts := uint64(1000 + i)
		if pkType == schemapb.DataType_VarChar {
			_ = d.AppendVarChar(fmt.Sprintf("pk-%d", i*7), ts)
		} else {
			_ = d.AppendInt64(int64(i*7-50), ts)
		}
	}
	return d
}

func encode(t testing.TB, d *Deletes, f Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Write(&buf, testMeta, d, f)
	if err != nil {
		t.Fatal(err)
	}
	if w.Bytes != int64(buf.Len()) {
		t.Fatalf("Written.Bytes %d, buffer %d", w.Bytes, buf.Len())
	}
	return buf.Bytes()
}

func readBytes(key string, b []byte) (*Deletes, Format, error) {
	return Read(key, bytes.NewReader(b), int64(len(b)))
}

// rawFile builds a deltalog container around a Parquet payload of the given
// columns, with free choice of descriptor fields, for malformed-input tests.
func rawFile(t testing.TB, desc binlog.Descriptor, evType binlog.EventType, names []string, cols ...arrow.Array) []byte {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: names[i], Type: c.DataType(), Nullable: true}
	}
	var payload bytes.Buffer
	if err := writeParquet(&payload, arrow.NewSchema(fields, nil), cols, parquet.NewWriterProperties()); err != nil {
		t.Fatal(err)
	}
	if desc.Extras == nil {
		desc.SetOriginalSize(1)
	}
	var buf bytes.Buffer
	if _, err := binlog.WriteFile(&buf, desc, binlog.Event{Type: evType, StartTimestamp: 1, EndTimestamp: 1}, payload.Bytes()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonRows builds a FormatJSON deltalog whose rows are the given strings.
func jsonRows(t testing.TB, rows ...string) []byte {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(rows, nil)
	col := b.NewArray()
	defer col.Release()
	return rawFile(t, binlog.Descriptor{PayloadType: schemapb.DataType_String, FieldID: -1}, binlog.DeleteEvent, []string{"val"}, col)
}

func int64Array(v ...int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

func multiDesc() binlog.Descriptor {
	d := binlog.Descriptor{PayloadType: schemapb.DataType_Int64, FieldID: -1}
	d.SetOriginalSize(1)
	d.Extras[binlog.ExtraVersion] = MultiFieldVersion
	return d
}
