package deltalog

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/corrupt"
)

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatJSON, FormatMultiField} {
		for _, pt := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
			t.Run(f.String()+"/"+pt.String(), func(t *testing.T) {
				d := genDeletes(pt, 1500)
				if pt == schemapb.DataType_VarChar {
					d.StrPKs[3] = `quote" back\ <tag>&amp; é 日本 ` + "\x01"
					d.StrPKs[4] = ""
				} else {
					d.IntPKs[3], d.IntPKs[4] = -1<<63, 1<<63-1
				}
				d.Timestamps[7] = 1<<63 - 1 // largest writable ts
				var buf bytes.Buffer
				w, err := Write(&buf, testMeta, d, f)
				if err != nil {
					t.Fatal(err)
				}
				want := Written{Bytes: int64(buf.Len()), MemorySize: d.MemorySize(), Rows: 1500, MinTS: 1000, MaxTS: 1<<63 - 1}
				if w != want {
					t.Fatalf("Written %+v, want %+v", w, want)
				}
				got, gf, err := readBytes(testKey, buf.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if gf != f {
					t.Fatalf("format %v, want %v", gf, f)
				}
				if !reflect.DeepEqual(got, d) {
					t.Fatalf("round trip differs:\n got %v %d %d\nwant %v %d %d", got.PKType, len(got.IntPKs), len(got.StrPKs), d.PKType, len(d.IntPKs), len(d.StrPKs))
				}
			})
		}
	}
}

func TestMemorySize(t *testing.T) {
	d := &Deletes{}
	_ = d.AppendVarChar("abc", 1)
	_ = d.AppendVarChar("", 2)
	if got := d.MemorySize(); got != (3+8)+(0+8)+16 {
		t.Fatalf("VarChar MemorySize %d", got)
	}
	if got := genDeletes(schemapb.DataType_Int64, 10).MemorySize(); got != 240 {
		t.Fatalf("Int64 MemorySize %d", got)
	}
}

// TestJSONLayout checks the bytes against DeleteCodec's conventions (§9.7.1).
func TestJSONLayout(t *testing.T) {
	d := &Deletes{}
	_ = d.AppendInt64(1, 300)
	_ = d.AppendInt64(-20, 100)
	_ = d.AppendInt64(1, 200)
	data := encode(t, d, FormatJSON)
	bf, err := binlog.ReadFile(testKey, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows := []string{`{"pk":1,"ts":300,"pkType":5}`, `{"pk":-20,"ts":100,"pkType":5}`, `{"pk":1,"ts":200,"pkType":5}`}
	orig := 0
	for _, r := range rows {
		orig += len(r)
	}
	desc := bf.Descriptor
	if desc.CollectionID != 1 || desc.PartitionID != 2 || desc.SegmentID != 3 || desc.FieldID != -1 ||
		desc.PayloadType != schemapb.DataType_String || desc.StartTimestamp != 100 || desc.EndTimestamp != 300 ||
		desc.Timestamp != testMeta.Timestamp {
		t.Fatalf("descriptor %+v", desc)
	}
	if n, err := desc.OriginalSize(); err != nil || n != int64(orig) || len(desc.Extras) != 1 {
		t.Fatalf("extras %v, want only original_size %d", desc.Extras, orig)
	}
	ev := bf.Events[0]
	if len(bf.Events) != 1 || ev.Type != binlog.DeleteEvent || ev.StartTimestamp != 100 || ev.EndTimestamp != 300 {
		t.Fatalf("events %+v", bf.Events)
	}
	pf, err := file.NewParquetReader(bf.Payload(bytes.NewReader(data), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	col := pf.MetaData().Schema.Column(0)
	if pf.MetaData().Schema.NumColumns() != 1 || col.Name() != "val" || col.MaxDefinitionLevel() != 0 {
		t.Fatalf("column %q, max def level %d: want one required column val", col.Name(), col.MaxDefinitionLevel())
	}
	if pf.NumRowGroups() != 1 {
		t.Fatalf("%d row groups", pf.NumRowGroups())
	}
	cc, _ := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if cc.Compression() != compress.Codecs.Zstd || cc.HasDictionaryPage() {
		t.Fatalf("compression %v, dictionary page %v", cc.Compression(), cc.HasDictionaryPage())
	}
	rr, _ := pf.RowGroup(0).Column(0)
	vals := make([]parquet.ByteArray, 3)
	n, _, _ := rr.(*file.ByteArrayColumnChunkReader).ReadBatch(3, vals, nil, nil)
	for i := 0; i < int(n); i++ {
		if string(vals[i]) != rows[i] {
			t.Errorf("row %d = %s, want %s", i, vals[i], rows[i])
		}
	}
}

func TestMultiFieldLayout(t *testing.T) {
	d := genDeletes(schemapb.DataType_VarChar, 10)
	data := encode(t, d, FormatMultiField)
	bf, err := binlog.ReadFile(testKey, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	desc := bf.Descriptor
	if desc.PayloadType != schemapb.DataType_Int64 || desc.Version() != MultiFieldVersion || desc.FieldID != -1 ||
		desc.StartTimestamp != 0 || desc.EndTimestamp != 0 {
		t.Fatalf("descriptor %+v", desc)
	}
	if n, _ := desc.OriginalSize(); n != d.MemorySize() {
		t.Fatalf("original_size %d, want %d", n, d.MemorySize())
	}
	if ev := bf.Events[0]; ev.StartTimestamp != 1 || ev.EndTimestamp != 1 {
		t.Fatalf("event %+v", ev)
	}
	pf, err := file.NewParquetReader(bf.Payload(bytes.NewReader(data), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	sc := pf.MetaData().Schema
	if sc.NumColumns() != 2 || sc.Column(0).Name() != "pk" || sc.Column(1).Name() != "ts" || sc.Column(0).MaxDefinitionLevel() != 0 {
		t.Fatalf("schema %s", sc)
	}
	if cc, _ := pf.MetaData().RowGroup(0).ColumnChunk(1); cc.Compression() != compress.Codecs.Uncompressed {
		t.Fatalf("ts column compressed with %v", cc.Compression())
	}
}

func TestRowVariants(t *testing.T) {
	data := jsonRows(t,
		`5,100`, // legacy CSV
		`-9223372036854775808,18446744073709551615`,       // CSV extremes
		`{ "ts": 7, "pkType": 5, "pk": 9 }`,               // whitespace, other key order
		`{"pk":12,"ts":8,"pkType":5,"extra":[1,{"a":2}]}`, // unknown keys ignored
		`  {"pk":13,"ts":9,"pkType":5}`,
	)
	got, f, err := readBytes(testKey, data)
	if err != nil {
		t.Fatal(err)
	}
	want := &Deletes{PKType: schemapb.DataType_Int64, IntPKs: []int64{5, -1 << 63, 9, 12, 13},
		Timestamps: []uint64{100, 1<<64 - 1, 7, 8, 9}}
	if f != FormatJSON || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v (%v), want %+v", got, f, want)
	}
	data = jsonRows(t, `{"pk":"a\"b\u00e9\\","ts":3,"pkType":21}`, `{"pk":"plain","ts":4,"pkType":21}`, `{"pkType":21,"pk":"x","ts":5}`)
	got, _, err = readBytes(testKey, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.StrPKs, []string{`a"bé\`, "plain", "x"}) || got.PKType != schemapb.DataType_VarChar {
		t.Fatalf("VarChar rows: %+v", got)
	}
}

func TestMalformedRows(t *testing.T) {
	cases := []struct {
		rows []string
		want string
	}{
		{[]string{`{"pk":1,"ts":2`}, `row 0 "{\"pk\":1,\"ts\":2": invalid JSON`},
		{[]string{`{"pk":1,"ts":2,"pkType":5}`, `{"pk":1,"ts":2}`}, `row 1 "{\"pk\":1,\"ts\":2}": key "pkType" missing`},
		{[]string{`{"pk":1,"pkType":5}`}, `key "ts" missing`},
		{[]string{`{"ts":1,"pkType":5}`}, `key "pk" missing`},
		{[]string{`{"pk":1,"ts":2,"pkType":20}`}, `key "pkType": 20 is neither`},
		{[]string{`{"pk":"1","ts":2,"pkType":5}`}, `key "pk": "1" is not a *int64`},
		{[]string{`{"pk":1,"ts":2,"pkType":21}`}, `key "pk": 1 is not a *string`},
		{[]string{`{"pk":1,"ts":-5,"pkType":5}`}, `key "ts": -5 is not a *uint64`},
		{[]string{`{"pk":1,"ts":2.5,"pkType":5}`}, `key "ts": 2.5`},
		{[]string{`{"pk":1,"ts":null,"pkType":5}`}, `key "ts" is null`},
		{[]string{`{"pk":99999999999999999999,"ts":1,"pkType":5}`}, `key "pk"`},
		{[]string{`[1,2]`}, `invalid JSON delete entry`},
		{[]string{`garbage`}, `row 0 "garbage": neither a JSON delete entry nor "pk,ts"`},
		{[]string{`1,2,3`}, `neither a JSON delete entry`},
		{[]string{`x,2`}, `pk "x" is not an int64`},
		{[]string{`1,-2`}, `ts "-2" is not a uint64`},
		{[]string{`1, 2`}, `ts " 2" is not a uint64`},
		{[]string{`{"pk":1,"ts":2,"pkType":5}`, `{"pk":"a","ts":2,"pkType":21}`}, `row 1 "{\"pk\":\"a\",\"ts\":2,\"pkType\":21}": pk type VarChar differs from earlier rows' Int64`},
		{[]string{`{"pk":"a","ts":2,"pkType":21}`, `7,8`}, `row 1 "7,8": pk type Int64 differs`},
	}
	for _, c := range cases {
		_, _, err := readBytes(testKey, jsonRows(t, c.rows...))
		if err == nil || !strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v\nwant it to name %s and contain %s", c.rows, err, testKey, c.want)
		}
	}
}

func TestMalformedFiles(t *testing.T) {
	good := encode(t, genDeletes(schemapb.DataType_Int64, 5), FormatJSON)
	strCol := func(v ...string) arrow.Array {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(v, nil)
		return b.NewArray()
	}
	floatCol := func() arrow.Array {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.Append(1)
		return b.NewArray()
	}()
	nullTS := func() arrow.Array {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendNull()
		return b.NewArray()
	}()
	jsonDesc := binlog.Descriptor{PayloadType: schemapb.DataType_String}
	notParquet := func() []byte {
		var buf bytes.Buffer
		d := jsonDesc
		d.SetOriginalSize(3)
		_, _ = binlog.WriteFile(&buf, d, binlog.Event{Type: binlog.DeleteEvent, StartTimestamp: 1, EndTimestamp: 1}, []byte("not parquet at all"))
		return buf.Bytes()
	}()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)-10], "truncated"},
		{"wrong magic", append([]byte{1, 2, 3, 4}, good[4:]...), "wrong magic"},
		{"insert event", rawFile(t, jsonDesc, binlog.InsertEvent, []string{"val"}, strCol("1,2")), "first event is InsertEvent, want DeleteEvent"},
		{"int64 payload without version", rawFile(t, binlog.Descriptor{PayloadType: schemapb.DataType_Int64}, binlog.DeleteEvent, []string{"val"}, strCol("1,2")), "payload type Int64, want String"},
		{"json column not string", rawFile(t, jsonDesc, binlog.DeleteEvent, []string{"val"}, int64Array(1)), `column "val" is int64, want string`},
		{"not parquet", notParquet, "payload is not Parquet"},
		{"multi: one column", rawFile(t, multiDesc(), binlog.DeleteEvent, []string{"pk"}, int64Array(1)), "payload has 1 columns, want 2"},
		{"multi: float pk", rawFile(t, multiDesc(), binlog.DeleteEvent, []string{"pk", "ts"}, floatCol, int64Array(1)), `pk column "pk" is float64`},
		{"multi: string ts", rawFile(t, multiDesc(), binlog.DeleteEvent, []string{"pk", "ts"}, int64Array(1), strCol("1")), `ts column "ts" is utf8`},
		{"multi: negative ts", rawFile(t, multiDesc(), binlog.DeleteEvent, []string{"pk", "ts"}, int64Array(1, 2), int64Array(5, -5)), "row 1: negative timestamp -5"},
		{"multi: null ts", rawFile(t, multiDesc(), binlog.DeleteEvent, []string{"pk", "ts"}, int64Array(1), nullTS), "null pk or ts"},
		{"json: null row", rawFile(t, jsonDesc, binlog.DeleteEvent, []string{"val"}, func() arrow.Array {
			b := array.NewStringBuilder(memory.DefaultAllocator)
			defer b.Release()
			b.AppendNull()
			return b.NewArray()
		}()), "row 0: null entry"},
	}
	for _, c := range cases {
		_, _, err := readBytes(testKey, c.data)
		if err == nil || !strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant it to name %s and contain %q", c.name, err, testKey, c.want)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	var buf bytes.Buffer
	cases := map[string]*Deletes{
		"empty":         {PKType: schemapb.DataType_Int64},
		"no type":       {},
		"zero ts":       {PKType: schemapb.DataType_Int64, IntPKs: []int64{1}, Timestamps: []uint64{0}},
		"ts over int64": {PKType: schemapb.DataType_Int64, IntPKs: []int64{1}, Timestamps: []uint64{1 << 63}},
		"length":        {PKType: schemapb.DataType_Int64, IntPKs: []int64{1, 2}, Timestamps: []uint64{5}},
		"mixed":         {PKType: schemapb.DataType_VarChar, StrPKs: []string{"a"}, IntPKs: []int64{1}, Timestamps: []uint64{5}},
	}
	for name, d := range cases {
		if _, err := Write(&buf, testMeta, d, FormatJSON); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if _, err := Write(&buf, testMeta, genDeletes(schemapb.DataType_Int64, 1), Format(7)); err == nil {
		t.Error("unknown format written")
	}
	d := &Deletes{}
	if err := d.AppendInt64(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := d.AppendVarChar("a", 1); err == nil {
		t.Error("VarChar appended to Int64 deletes")
	}
	if err := d.Append(genDeletes(schemapb.DataType_VarChar, 2)); err == nil {
		t.Error("VarChar deletes appended to Int64 deletes")
	}
	if err := d.Append(genDeletes(schemapb.DataType_Int64, 2)); err != nil || d.Len() != 3 {
		t.Errorf("Append: %v, len %d", err, d.Len())
	}
}

// ReadFor refuses a deltalog whose descriptor names another collection,
// partition or segment than the plan lists it under.
func TestReadForChecksOwner(t *testing.T) {
	b := encode(t, genDeletes(schemapb.DataType_Int64, 10), FormatJSON)
	const key = "files/delta_log/1/2/3/9"
	owner := binlog.Owner{CollectionID: testMeta.CollectionID, PartitionID: testMeta.PartitionID, SegmentID: testMeta.SegmentID}
	if d, _, err := ReadFor(key, bytes.NewReader(b), int64(len(b)), owner); err != nil || d.Len() != 10 {
		t.Fatalf("own segment: %v records, %v", d, err)
	}
	owner.SegmentID = 17654435772432484
	_, _, err := ReadFor(key, bytes.NewReader(b), int64(len(b)), owner)
	want := fmt.Sprintf("deltalog %q: descriptor says segment %d, plan says 17654435772432484", key, testMeta.SegmentID)
	if err == nil || err.Error() != want || !errors.Is(err, corrupt.Err) {
		t.Fatalf("err = %v, want %q matching corrupt.Err", err, want)
	}
}
