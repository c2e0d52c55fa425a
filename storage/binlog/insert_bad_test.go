package binlog

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/corrupt"
)

const badKey = "files/insert_log/1/2/3/101/99"

// openErr opens b as an insert binlog and, if that succeeds, drains it,
// returning the first error.
func openErr(b []byte, f *schemapb.FieldSchema) error {
	ir, err := NewInsertReader(badKey, bytes.NewReader(b), int64(len(b)), f, 64)
	if err != nil {
		return err
	}
	defer ir.Close()
	for {
		c, err := ir.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Release()
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	if !strings.Contains(err.Error(), badKey) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q should name the key and mention %q", err, want)
	}
}

func TestInsertReaderBadInput(t *testing.T) {
	f := testField(101, schemapb.DataType_FloatVector, 8, false)
	col := makeColumn(t, f, 50, false)
	defer col.Release()
	good, _ := encode(t, f, col, WriterOptions{})
	if err := openErr(good, f); err != nil {
		t.Fatal(err)
	}

	t.Run("payload type mismatch", func(t *testing.T) {
		err := openErr(good, testField(101, schemapb.DataType_Float16Vector, 16, false))
		wantErr(t, err, "descriptor says payload type FloatVector, plan says field 101 (f101) is Float16Vector")
		if !errors.Is(err, corrupt.Err) {
			t.Fatalf("%v does not match corrupt.Err", err)
		}
	})
	t.Run("field id mismatch", func(t *testing.T) {
		err := openErr(good, testField(102, schemapb.DataType_FloatVector, 8, false))
		wantErr(t, err, "descriptor says field 101, plan says field 102 (f102)")
		if !errors.Is(err, corrupt.Err) {
			t.Fatalf("%v does not match corrupt.Err", err)
		}
	})
	t.Run("dim mismatch", func(t *testing.T) {
		wantErr(t, openErr(good, testField(101, schemapb.DataType_FloatVector, 9, false)),
			"payload vector width 32 bytes does not match dim-derived width 36")
	})
	t.Run("arrow type mismatch", func(t *testing.T) {
		// Descriptor says Int32, Parquet column is Int64.
		i64 := testField(101, schemapb.DataType_Int64, 0, false)
		c := makeColumn(t, i64, 5, false)
		defer c.Release()
		b, _ := encode(t, i64, c, WriterOptions{})
		b[4+17+48] = byte(schemapb.DataType_Int32)
		wantErr(t, openErr(b, testField(101, schemapb.DataType_Int32, 0, false)),
			"Parquet column 0 has Arrow type int64")
	})
	t.Run("not parquet", func(t *testing.T) {
		var buf bytes.Buffer
		d := baseDesc
		d.FieldID, d.PayloadType = 101, schemapb.DataType_FloatVector
		d.SetOriginalSize(10)
		if _, err := WriteFile(&buf, d, Event{Type: InsertEvent, StartTimestamp: 1, EndTimestamp: 1}, []byte("this is not a parquet file at all")); err != nil {
			t.Fatal(err)
		}
		wantErr(t, openErr(buf.Bytes(), f), "payload is not a valid Parquet file")
	})
	t.Run("delete event", func(t *testing.T) {
		b := bytes.Clone(good)
		fl, _ := ReadFile("k", bytes.NewReader(b), int64(len(b)))
		b[fl.Events[0].PayloadOffset-33+8] = byte(DeleteEvent)
		wantErr(t, openErr(b, f), "event is DeleteEvent, want InsertEvent")
	})
	t.Run("nulls in non-nullable field", func(t *testing.T) {
		nf := testField(101, schemapb.DataType_Int64, 0, true)
		c := makeColumn(t, nf, 10, true)
		defer c.Release()
		var buf bytes.Buffer
		d := baseDesc
		d.Extras = map[string]any{}
		if _, err := EncodeInsert(&buf, d, nf, c, WriterOptions{}); err != nil {
			t.Fatal(err)
		}
		b := bytes.Replace(buf.Bytes(), []byte(`"nullable":true`), []byte(`"nullable":null`), 1)
		wantErr(t, openErr(b, testField(101, schemapb.DataType_Int64, 0, false)), "is not nullable but the payload holds 3 nulls")
	})
	t.Run("wrong magic", func(t *testing.T) {
		b := bytes.Clone(good)
		b[1] ^= 0xFF
		wantErr(t, openErr(b, f), "wrong magic")
	})
	t.Run("length beyond object", func(t *testing.T) {
		wantErr(t, openErr(good[:len(good)-1], f), "only")
	})
	t.Run("truncated everywhere", func(t *testing.T) {
		for cut := 0; cut < len(good); cut += 1 + cut/16 {
			err := openErr(good[:cut], f)
			if err == nil || !strings.Contains(err.Error(), badKey) {
				t.Fatalf("cut at %d: %v", cut, err)
			}
		}
	})
	t.Run("corrupted payload bytes", func(t *testing.T) {
		fl, _ := ReadFile("k", bytes.NewReader(good), int64(len(good)))
		start := int(fl.Events[0].PayloadOffset)
		for pos := start; pos < len(good); pos += 7 {
			b := bytes.Clone(good)
			b[pos] ^= 0x5A
			if err := openErr(b, f); err != nil && !strings.Contains(err.Error(), badKey) {
				t.Fatalf("flip at %d: error without key: %v", pos, err)
			}
		}
	})
}

func FuzzInsertReader(f *testing.F) {
	fields := []*schemapb.FieldSchema{
		testField(101, schemapb.DataType_Int64, 0, true),
		testField(102, schemapb.DataType_VarChar, 0, false),
		testField(103, schemapb.DataType_FloatVector, 4, false),
	}
	for i, fs := range fields {
		col := makeColumn(f, fs, 20, fs.Nullable)
		b, _ := encode(f, fs, col, WriterOptions{MaxRowGroupRows: 8})
		col.Release()
		f.Add(b, uint8(i))
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		fs := fields[int(which)%len(fields)]
		ir, err := NewInsertReader("fuzz", bytes.NewReader(b), int64(len(b)), fs, 16)
		if err != nil {
			if !strings.Contains(err.Error(), `"fuzz"`) {
				t.Fatalf("error without key: %v", err)
			}
			return
		}
		defer ir.Close()
		for i := 0; i < 64; i++ { // bounded: keep each iteration cheap
			c, err := ir.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), `"fuzz"`) {
					t.Fatalf("error without key: %v", err)
				}
				return
			}
			c.Release()
		}
	})
}

func TestCheckOwner(t *testing.T) {
	d := Descriptor{CollectionID: 1, PartitionID: 2, SegmentID: 3}
	if err := d.CheckOwner(Owner{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Owner
		want string
	}{
		{Owner{9, 2, 3}, "descriptor says collection 1, plan says 9"},
		{Owner{1, -1, 3}, "descriptor says partition 2, plan says -1"},
		{Owner{1, 2, 100}, "descriptor says segment 3, plan says 100"},
	} {
		err := d.CheckOwner(c.o)
		if err == nil || err.Error() != c.want || !errors.Is(err, corrupt.Err) {
			t.Errorf("%+v: err = %v, want %q matching corrupt.Err", c.o, err, c.want)
		}
	}
}
