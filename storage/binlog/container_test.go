package binlog

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func testDescriptor() Descriptor {
	d := Descriptor{
		Timestamp: 449000000000000001, CollectionID: 1001, PartitionID: 1002, SegmentID: 1003,
		FieldID: 101, PayloadType: schemapb.DataType_Int64,
		Extras: map[string]any{ExtraNullable: false},
	}
	d.SetOriginalSize(4096)
	return d
}

func writeTestFile(t testing.TB, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteFile(&buf, testDescriptor(), Event{Type: InsertEvent, Timestamp: 7, StartTimestamp: 1, EndTimestamp: 1}, payload)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteFile returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestContainerLayout(t *testing.T) {
	payload := []byte("PAR1-not-really-PAR1")
	b := writeTestFile(t, payload)
	le := binary.LittleEndian
	if !bytes.Equal(b[:4], []byte{0xBC, 0xFA, 0xFF, 0x00}) {
		t.Fatalf("magic bytes % X", b[:4])
	}
	extras := `{"nullable":false,"original_size":"4096"}`
	descLen := 17 + 52 + 8 + 4 + len(extras)
	if got := le.Uint64(b[4:]); got != 449000000000000001 {
		t.Errorf("descriptor ts %d", got)
	}
	if b[12] != 0 {
		t.Errorf("descriptor type code %d", b[12])
	}
	if got := int(le.Uint32(b[13:])); got != descLen {
		t.Errorf("descriptor EventLength %d, want %d", got, descLen)
	}
	if got := int(le.Uint32(b[17:])); got != 4+descLen {
		t.Errorf("descriptor NextPosition %d, want %d", got, 4+descLen)
	}
	data := b[21:]
	for i, want := range []int64{1001, 1002, 1003, 101, 0, 0} {
		if got := int64(le.Uint64(data[i*8:])); got != want {
			t.Errorf("descriptor fix field %d = %d, want %d", i, got, want)
		}
	}
	if got := int32(le.Uint32(data[48:])); got != 5 {
		t.Errorf("payload type %d", got)
	}
	if !bytes.Equal(data[52:60], []byte{52, 16, 16, 16, 16, 16, 16, 16}) {
		t.Errorf("post header lengths %v", data[52:60])
	}
	if got := int(le.Uint32(data[60:])); got != len(extras) {
		t.Errorf("extra length %d", got)
	}
	if got := string(data[64 : 64+len(extras)]); got != extras {
		t.Errorf("extras %s, want %s", got, extras)
	}
	ev := b[4+descLen:]
	if got := le.Uint64(ev); got != 7 {
		t.Errorf("event ts %d", got)
	}
	if ev[8] != 1 {
		t.Errorf("event type %d", ev[8])
	}
	if got := int(le.Uint32(ev[9:])); got != 17+16+len(payload) {
		t.Errorf("event length %d", got)
	}
	if got := int32(le.Uint32(ev[13:])); got != -1 {
		t.Errorf("event next position %d", got)
	}
	if le.Uint64(ev[17:]) != 1 || le.Uint64(ev[25:]) != 1 {
		t.Errorf("event start/end ts % X", ev[17:33])
	}
	if !bytes.Equal(ev[33:], payload) {
		t.Errorf("payload %q", ev[33:])
	}
	if len(b) != 4+descLen+33+len(payload) {
		t.Errorf("file length %d", len(b))
	}
}

func TestContainerRoundTrip(t *testing.T) {
	payload := []byte("some payload bytes")
	b := writeTestFile(t, payload)
	f, err := ReadFile("k", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Descriptor
	if d.CollectionID != 1001 || d.PartitionID != 1002 || d.SegmentID != 1003 || d.FieldID != 101 ||
		d.PayloadType != schemapb.DataType_Int64 || d.Timestamp != 449000000000000001 {
		t.Fatalf("descriptor %+v", d)
	}
	if n, err := d.OriginalSize(); err != nil || n != 4096 {
		t.Fatalf("OriginalSize = %d, %v", n, err)
	}
	if d.Nullable() || d.Version() != "" {
		t.Fatalf("Nullable %v Version %q", d.Nullable(), d.Version())
	}
	if len(f.Events) != 1 {
		t.Fatalf("%d events", len(f.Events))
	}
	ev := f.Events[0]
	if ev.Type != InsertEvent || ev.Timestamp != 7 || ev.StartTimestamp != 1 || ev.EndTimestamp != 1 ||
		ev.PayloadLength != int64(len(payload)) {
		t.Fatalf("event %+v", ev)
	}
	got := make([]byte, ev.PayloadLength)
	if _, err := f.Payload(bytes.NewReader(b), 0).ReadAt(got, 0); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("payload %q, %v", got, err)
	}
}

func TestContainerMultipleEventsAndVersion(t *testing.T) {
	d := testDescriptor()
	d.Extras[ExtraVersion] = "MULTI_FIELD"
	d.Extras[ExtraNullable] = true
	var buf bytes.Buffer
	if _, err := WriteFile(&buf, d, Event{Type: DeleteEvent, StartTimestamp: 5, EndTimestamp: 9}, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	// Append a second event by hand: Milvus' Go reader accepts several.
	ev := binary.LittleEndian.AppendUint64(nil, 3)
	ev = append(ev, byte(DeleteEvent))
	ev = binary.LittleEndian.AppendUint32(ev, 17+16+3)
	ev = binary.LittleEndian.AppendUint32(ev, 0)
	ev = binary.LittleEndian.AppendUint64(ev, 10)
	ev = binary.LittleEndian.AppendUint64(ev, 11)
	ev = append(ev, "xyz"...)
	b := append(buf.Bytes(), ev...)
	f, err := ReadFile("k", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Descriptor.Nullable() || f.Descriptor.Version() != "MULTI_FIELD" {
		t.Fatalf("extras %v", f.Descriptor.Extras)
	}
	if len(f.Events) != 2 || f.Events[1].StartTimestamp != 10 || f.Events[1].PayloadLength != 3 ||
		f.Events[0].StartTimestamp != 5 || f.Events[0].EndTimestamp != 9 {
		t.Fatalf("events %+v", f.Events)
	}
}

func TestOriginalSizeLenientRead(t *testing.T) {
	b := writeTestFile(t, nil)
	b = bytes.Replace(b, []byte(`"original_size":"4096"`), []byte(`"original_size":  4096`), 1)
	f, err := ReadFile("k", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Descriptor.OriginalSize(); err != nil || n != 4096 {
		t.Fatalf("OriginalSize %d, %v", n, err)
	}
	if _, err := (Descriptor{Extras: map[string]any{ExtraOriginalSize: true}}).OriginalSize(); err == nil {
		t.Fatal("bool original_size accepted")
	}
}

func TestWriteFileRejects(t *testing.T) {
	good := Event{Type: InsertEvent, StartTimestamp: 1, EndTimestamp: 1}
	cases := []struct {
		name string
		d    Descriptor
		ev   Event
		want string
	}{
		{"no original size", Descriptor{}, good, "original_size"},
		{"numeric original size", Descriptor{Extras: map[string]any{ExtraOriginalSize: 12}}, good, "want a JSON string"},
		{"non-decimal original size", Descriptor{Extras: map[string]any{ExtraOriginalSize: "1e3"}}, good, "not a decimal integer"},
		{"bad nullable", Descriptor{Extras: map[string]any{ExtraOriginalSize: "1", ExtraNullable: "yes"}}, good, "want bool"},
		{"descriptor type", testDescriptor(), Event{Type: DescriptorEvent, StartTimestamp: 1, EndTimestamp: 1}, "not a data event"},
		{"zero ts", testDescriptor(), Event{Type: InsertEvent}, "non-zero"},
	}
	for _, c := range cases {
		_, err := WriteFile(&bytes.Buffer{}, c.d, c.ev, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func expectReadErr(t *testing.T, b []byte, want string) {
	t.Helper()
	_, err := ReadFile("insert_log/1/2/3/101/7", bytes.NewReader(b), int64(len(b)))
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !strings.Contains(err.Error(), "insert_log/1/2/3/101/7") || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want key and %q", err, want)
	}
}

func TestReadFileBadInput(t *testing.T) {
	good := writeTestFile(t, []byte("payload"))
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	descLen := int(binary.LittleEndian.Uint32(good[13:]))
	evPos := 4 + descLen
	expectReadErr(t, mut(func(b []byte) { b[0] = 0xBD }), "wrong magic")
	expectReadErr(t, mut(func(b []byte) { b[12] = 1 }), "want 0 (DescriptorEvent)")
	expectReadErr(t, mut(func(b []byte) { b[evPos+8] = 9 }), "unknown type code 9")
	expectReadErr(t, mut(func(b []byte) { b[evPos+8] = 0xFF }), "unknown type code -1")
	expectReadErr(t, mut(func(b []byte) { b[evPos+8] = 0 }), "unknown type code 0")
	expectReadErr(t, mut(func(b []byte) { binary.LittleEndian.PutUint32(b[evPos+9:], 1<<30) }), "only")
	expectReadErr(t, mut(func(b []byte) { binary.LittleEndian.PutUint32(b[evPos+9:], 20) }), "below the minimum")
	expectReadErr(t, mut(func(b []byte) { binary.LittleEndian.PutUint32(b[13:], 1<<30) }), "EventLength")
	expectReadErr(t, mut(func(b []byte) { binary.LittleEndian.PutUint32(b[13:], 0xFFFFFFF0) }), "below the minimum")
	expectReadErr(t, mut(func(b []byte) { binary.LittleEndian.PutUint32(b[21+60:], 3) }), "extras length")
	expectReadErr(t, mut(func(b []byte) { b[21+64] = '[' }), "not a JSON object")
	expectReadErr(t, good[:evPos], "no data event")
	for cut := 0; cut < len(good); cut++ {
		_, err := ReadFile("the-key", bytes.NewReader(good[:cut]), int64(cut))
		if err == nil || !strings.Contains(err.Error(), `"the-key"`) {
			t.Fatalf("truncated at %d: err %v", cut, err)
		}
	}
}

func FuzzReadFile(f *testing.F) {
	f.Add(writeTestFile(f, []byte("payload")))
	f.Add(writeTestFile(f, nil))
	f.Add([]byte{0xBC, 0xFA, 0xFF, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := ReadFile("fuzz", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !strings.Contains(err.Error(), `"fuzz"`) {
				t.Fatalf("error does not name the key: %v", err)
			}
			return
		}
		for _, ev := range file.Events {
			if ev.PayloadOffset < 0 || ev.PayloadLength < 0 || ev.PayloadOffset+ev.PayloadLength > int64(len(b)) {
				t.Fatalf("event outside object: %+v (size %d)", ev, len(b))
			}
		}
	})
}
