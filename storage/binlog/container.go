package binlog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Magic is the little-endian int32 at offset 0 of every binlog (bytes BC FA FF 00).
const Magic uint32 = 0x00FFFABC

// EventType is the int8 type code stored in every event header.
type EventType int8

// Event type codes as Milvus numbers them. Current Milvus writes only
// DescriptorEvent followed by one InsertEvent, DeleteEvent or IndexFileEvent.
const (
	DescriptorEvent       EventType = 0
	InsertEvent           EventType = 1
	DeleteEvent           EventType = 2
	CreateCollectionEvent EventType = 3
	DropCollectionEvent   EventType = 4
	CreatePartitionEvent  EventType = 5
	DropPartitionEvent    EventType = 6
	IndexFileEvent        EventType = 7
	eventTypeEnd          EventType = 8
)

// String returns the Milvus name of the event type.
func (t EventType) String() string {
	names := [...]string{"DescriptorEvent", "InsertEvent", "DeleteEvent", "CreateCollectionEvent",
		"DropCollectionEvent", "CreatePartitionEvent", "DropPartitionEvent", "IndexFileEvent"}
	if t >= 0 && t < eventTypeEnd {
		return names[t]
	}
	return fmt.Sprintf("EventType(%d)", int8(t))
}

// Sizes of the fixed parts of the format (§9.2-9.4 of milvus-formats.md).
const (
	magicSize          = 4
	headerSize         = 17 // Timestamp u64, TypeCode i8, EventLength i32, NextPosition i32
	descriptorFixSize  = 52 // 4×int64 IDs, 2×uint64 ts, int32 payload type
	postHeaderLensSize = 8  // one uint8 per event type code 0..7
	extraLenSize       = 4
	dataFixSize        = 16 // StartTimestamp u64, EndTimestamp u64

	descriptorMinLength = headerSize + descriptorFixSize + postHeaderLensSize + extraLenSize
	dataEventMinLength  = headerSize + dataFixSize
)

// Well-known descriptor extras keys.
const (
	ExtraOriginalSize = "original_size" // JSON string holding a decimal int: uncompressed payload bytes
	ExtraNullable     = "nullable"      // JSON bool
	ExtraVersion      = "version"       // "MULTI_FIELD" for the pk/ts deltalog format
	extraEdek         = "edek"          // present when the payload is encrypted (CMEK); unsupported
)

// postHeaderLengths is what Milvus writes: the fix-part size of each event type.
var postHeaderLengths = [postHeaderLensSize]byte{descriptorFixSize, dataFixSize, dataFixSize,
	dataFixSize, dataFixSize, dataFixSize, dataFixSize, dataFixSize}

// Descriptor is the decoded descriptor event of a binlog: the file's metadata.
type Descriptor struct {
	Timestamp                                     uint64 // descriptor event header timestamp (informational)
	CollectionID, PartitionID, SegmentID, FieldID int64  // FieldID is -1 for deltalogs
	StartTimestamp, EndTimestamp                  uint64 // 0 for Milvus' streaming writers
	PayloadType                                   schemapb.DataType
	// Extras is the decoded extras JSON object. Numbers decode as json.Number.
	// The writer serializes it with sorted keys (as Milvus does); it must
	// contain ExtraOriginalSize as a decimal string.
	Extras map[string]any
}

// OriginalSize returns the "original_size" extra (uncompressed payload
// bytes). Milvus writes it as a decimal JSON string; a JSON integer is also
// accepted when reading. It fails when the key is missing or malformed.
func (d Descriptor) OriginalSize() (int64, error) {
	v, ok := d.Extras[ExtraOriginalSize]
	if !ok {
		return 0, fmt.Errorf("descriptor extras have no %q", ExtraOriginalSize)
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		return 0, fmt.Errorf("descriptor extra %q is %T, want a JSON string", ExtraOriginalSize, v)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("descriptor extra %q = %q is not a decimal integer", ExtraOriginalSize, s)
	}
	return n, nil
}

// SetOriginalSize stores n as the "original_size" extra, as a JSON string.
func (d *Descriptor) SetOriginalSize(n int64) {
	if d.Extras == nil {
		d.Extras = map[string]any{}
	}
	d.Extras[ExtraOriginalSize] = strconv.FormatInt(n, 10)
}

// Nullable reports the "nullable" extra; absent or non-bool means false.
func (d Descriptor) Nullable() bool {
	b, _ := d.Extras[ExtraNullable].(bool)
	return b
}

// Version returns the "version" extra ("MULTI_FIELD" marks the pk/ts
// deltalog format), or "" when absent or not a string.
func (d Descriptor) Version() string {
	s, _ := d.Extras[ExtraVersion].(string)
	return s
}

// Event is one data event (insert, delete, index file, ...) of a binlog. Its
// payload, a complete Parquet file for insert and delete events, occupies
// [PayloadOffset, PayloadOffset+PayloadLength) of the object.
type Event struct {
	Type                         EventType
	Timestamp                    uint64 // header timestamp (informational)
	StartTimestamp, EndTimestamp uint64 // Milvus rejects 0; streaming writers store 1 and 1
	PayloadOffset, PayloadLength int64  // filled by ReadFile; ignored by WriteFile
}

// File is a parsed binlog container: the descriptor and the located events.
type File struct {
	Descriptor Descriptor
	Events     []Event
}

// validateExtras checks the rules Milvus' writer enforces and returns the
// serialized extras (encoding/json sorts map keys, like Milvus' sonic ConfigStd).
func validateExtras(extras map[string]any) ([]byte, error) {
	if s, ok := extras[ExtraOriginalSize].(string); !ok {
		if _, present := extras[ExtraOriginalSize]; !present {
			return nil, fmt.Errorf("descriptor extras have no %q (Milvus requires it)", ExtraOriginalSize)
		}
		return nil, fmt.Errorf("descriptor extra %q is %T, want a JSON string", ExtraOriginalSize, extras[ExtraOriginalSize])
	} else if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return nil, fmt.Errorf("descriptor extra %q = %q is not a decimal integer", ExtraOriginalSize, s)
	}
	if v, ok := extras[ExtraNullable]; ok {
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("descriptor extra %q is %T, want bool", ExtraNullable, v)
		}
	}
	b, err := json.Marshal(extras)
	if err != nil {
		return nil, fmt.Errorf("descriptor extras: %w", err)
	}
	return b, nil
}

// WriteFile writes a complete single-event binlog: magic, descriptor event and
// one data event whose payload is payload. It returns the bytes written.
//
// Layout choices: the descriptor's NextPosition is the absolute offset of the
// data event (4 + its EventLength), as every Milvus writer does; the data
// event's NextPosition is -1, as Milvus' streaming (compaction/flush) writers
// leave it. Readers, Milvus' Go and C++ ones included, locate the payload by
// EventLength only. ev.StartTimestamp and ev.EndTimestamp must be non-zero
// (Milvus refuses zero); d.Extras must carry "original_size" as a string.
func WriteFile(w io.Writer, d Descriptor, ev Event, payload []byte) (int64, error) {
	header, err := FileHeader(d, ev, int64(len(payload)))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(header)
	if err != nil {
		return int64(n), fmt.Errorf("binlog write: %w", err)
	}
	m, err := w.Write(payload)
	if err != nil {
		return int64(n + m), fmt.Errorf("binlog write payload: %w", err)
	}
	return int64(n + m), nil
}

// FileHeader returns the bytes WriteFile writes before a payload of
// payloadLen bytes (magic, descriptor event, data event header), so that a
// caller holding the payload can upload header and payload without joining
// them. The same rules as WriteFile's apply.
func FileHeader(d Descriptor, ev Event, payloadLen int64) ([]byte, error) {
	if ev.Type <= DescriptorEvent || ev.Type >= eventTypeEnd {
		return nil, fmt.Errorf("binlog write: event type %d is not a data event type (1..7)", ev.Type)
	}
	if ev.StartTimestamp == 0 || ev.EndTimestamp == 0 {
		return nil, fmt.Errorf("binlog write: event start/end timestamps must be non-zero (got %d, %d)",
			ev.StartTimestamp, ev.EndTimestamp)
	}
	extras, err := validateExtras(d.Extras)
	if err != nil {
		return nil, fmt.Errorf("binlog write: %w", err)
	}
	descLen := int64(descriptorMinLength) + int64(len(extras))
	dataLen := int64(dataEventMinLength) + payloadLen
	if payloadLen < 0 || magicSize+descLen+dataLen > 1<<31-1 {
		return nil, fmt.Errorf("binlog write: file of %d bytes exceeds the int32 event length limit",
			magicSize+descLen+dataLen)
	}

	le := binary.LittleEndian
	buf := make([]byte, 0, magicSize+int(descLen)+dataEventMinLength)
	buf = le.AppendUint32(buf, Magic)
	// descriptor event header
	buf = le.AppendUint64(buf, d.Timestamp)
	buf = append(buf, byte(DescriptorEvent))
	buf = le.AppendUint32(buf, uint32(descLen))
	buf = le.AppendUint32(buf, uint32(magicSize+descLen))
	// descriptor data
	for _, v := range []int64{d.CollectionID, d.PartitionID, d.SegmentID, d.FieldID} {
		buf = le.AppendUint64(buf, uint64(v))
	}
	buf = le.AppendUint64(buf, d.StartTimestamp)
	buf = le.AppendUint64(buf, d.EndTimestamp)
	buf = le.AppendUint32(buf, uint32(int32(d.PayloadType)))
	buf = append(buf, postHeaderLengths[:]...)
	buf = le.AppendUint32(buf, uint32(len(extras)))
	buf = append(buf, extras...)
	// data event header + fix part
	buf = le.AppendUint64(buf, ev.Timestamp)
	buf = append(buf, byte(ev.Type))
	buf = le.AppendUint32(buf, uint32(dataLen))
	buf = le.AppendUint32(buf, 0xFFFFFFFF) // NextPosition -1
	buf = le.AppendUint64(buf, ev.StartTimestamp)
	buf = le.AppendUint64(buf, ev.EndTimestamp)
	return buf, nil
}

// ReadFile parses the container of the binlog stored under key (r holds size
// bytes). It validates the magic, header sizes, event type codes and that
// every length stays inside the object; payloads are located, not read.
// Every error names key and what is wrong.
func ReadFile(key string, r io.ReaderAt, size int64) (*File, error) {
	f, err := readFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("binlog %q: %w", key, err)
	}
	return f, nil
}

func readAt(r io.ReaderAt, off, n int64, what string) ([]byte, error) {
	b := make([]byte, n)
	got, err := r.ReadAt(b, off)
	if int64(got) == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("reading %s (%d bytes at offset %d): %w", what, n, off, err)
}

type eventHeader struct {
	ts       uint64
	typ      EventType
	length   int64
	nextPos  int32
	position int64
}

func readHeader(r io.ReaderAt, pos, size int64, what string) (eventHeader, error) {
	if pos+headerSize > size {
		return eventHeader{}, fmt.Errorf("truncated: %s header needs %d bytes at offset %d, object has %d",
			what, headerSize, pos, size)
	}
	b, err := readAt(r, pos, headerSize, what+" header")
	if err != nil {
		return eventHeader{}, err
	}
	le := binary.LittleEndian
	h := eventHeader{
		ts:       le.Uint64(b[0:8]),
		typ:      EventType(int8(b[8])),
		length:   int64(int32(le.Uint32(b[9:13]))),
		nextPos:  int32(le.Uint32(b[13:17])),
		position: pos,
	}
	if h.length > size-pos {
		return h, fmt.Errorf("truncated: %s at offset %d has EventLength %d but only %d bytes remain",
			what, pos, h.length, size-pos)
	}
	return h, nil
}

func readFile(r io.ReaderAt, size int64) (*File, error) {
	if size < magicSize {
		return nil, fmt.Errorf("truncated: object has %d bytes, too short for the magic number", size)
	}
	b, err := readAt(r, 0, magicSize, "magic")
	if err != nil {
		return nil, err
	}
	if m := binary.LittleEndian.Uint32(b); m != Magic {
		return nil, fmt.Errorf("wrong magic number 0x%08X, want 0x%08X", m, Magic)
	}
	dh, err := readHeader(r, magicSize, size, "descriptor event")
	if err != nil {
		return nil, err
	}
	if dh.typ != DescriptorEvent {
		return nil, fmt.Errorf("first event has type code %d, want %d (DescriptorEvent)", dh.typ, DescriptorEvent)
	}
	if dh.length < descriptorMinLength {
		return nil, fmt.Errorf("descriptor EventLength %d is below the minimum %d", dh.length, descriptorMinLength)
	}
	data, err := readAt(r, magicSize+headerSize, dh.length-headerSize, "descriptor data")
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	d := Descriptor{Timestamp: dh.ts}
	d.CollectionID = int64(le.Uint64(data[0:]))
	d.PartitionID = int64(le.Uint64(data[8:]))
	d.SegmentID = int64(le.Uint64(data[16:]))
	d.FieldID = int64(le.Uint64(data[24:]))
	d.StartTimestamp = le.Uint64(data[32:])
	d.EndTimestamp = le.Uint64(data[40:])
	d.PayloadType = schemapb.DataType(int32(le.Uint32(data[48:])))
	// data[52:60] are the post-header lengths; Milvus' readers do not validate them.
	extraLen := int64(int32(le.Uint32(data[60:64])))
	if want := dh.length - descriptorMinLength; extraLen != want {
		return nil, fmt.Errorf("descriptor extras length %d disagrees with EventLength %d (expected %d)",
			extraLen, dh.length, want)
	}
	dec := json.NewDecoder(bytes.NewReader(data[64:]))
	dec.UseNumber()
	if err := dec.Decode(&d.Extras); err != nil {
		return nil, fmt.Errorf("descriptor extras are not a JSON object: %w", err)
	}
	if d.Extras == nil { // JSON null
		return nil, fmt.Errorf("descriptor extras are JSON null, want an object")
	}
	if _, ok := d.Extras[extraEdek]; ok {
		return nil, fmt.Errorf("binlog is encrypted (extras carry %q); encrypted binlogs are not supported", extraEdek)
	}

	f := &File{Descriptor: d}
	for pos := magicSize + dh.length; pos < size; {
		h, err := readHeader(r, pos, size, fmt.Sprintf("event #%d", len(f.Events)+1))
		if err != nil {
			return nil, err
		}
		if h.typ <= DescriptorEvent || h.typ >= eventTypeEnd {
			return nil, fmt.Errorf("event #%d at offset %d has unknown type code %d", len(f.Events)+1, pos, int8(h.typ))
		}
		if h.length < dataEventMinLength {
			return nil, fmt.Errorf("event #%d at offset %d has EventLength %d, below the minimum %d",
				len(f.Events)+1, pos, h.length, dataEventMinLength)
		}
		fix, err := readAt(r, pos+headerSize, dataFixSize, "event fix part")
		if err != nil {
			return nil, err
		}
		f.Events = append(f.Events, Event{
			Type:           h.typ,
			Timestamp:      h.ts,
			StartTimestamp: le.Uint64(fix[0:]),
			EndTimestamp:   le.Uint64(fix[8:]),
			PayloadOffset:  pos + dataEventMinLength,
			PayloadLength:  h.length - dataEventMinLength,
		})
		pos += h.length
	}
	if len(f.Events) == 0 {
		return nil, fmt.Errorf("no data event after the descriptor (object has %d bytes)", size)
	}
	return f, nil
}

// Payload returns a reader over the payload of event i of the object r.
func (f *File) Payload(r io.ReaderAt, i int) *io.SectionReader {
	ev := f.Events[i]
	return io.NewSectionReader(r, ev.PayloadOffset, ev.PayloadLength)
}
