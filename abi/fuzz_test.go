package abi

import "testing"

// touch reads every value a strategy could read from a decoded batch, so
// the fuzzer checks the accessors as well as the decoder.
func touch(b *Batch) {
	for i := 0; i < b.NumColumns(); i++ {
		c := b.Column(i)
		for r := 0; r < c.Len(); r++ {
			c.IsNull(r)
		}
		switch c.Type {
		case TypeBool:
			c.Bools()
		case TypeInt8:
			c.Int8s()
		case TypeInt16:
			c.Int16s()
		case TypeInt32:
			c.Int32s()
		case TypeInt64:
			c.Int64s()
		case TypeUint32:
			c.Uint32s()
		case TypeFloat32:
			c.Float32s()
		case TypeFloat64:
			c.Float64s()
		case TypeString, TypeBinary, TypeFixed:
			for r := 0; r < c.Len(); r++ {
				c.Bytes(r)
			}
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	h, cols := sampleColumns()
	valid, _ := Encode(h, cols)
	f.Add(valid)
	empty, _ := Encode(BatchHeader{Kind: BatchRows}, nil)
	f.Add(empty)
	f.Add(valid[:HeaderSize])
	f.Fuzz(func(t *testing.T, buf []byte) {
		b, err := DecodeBatch(buf)
		if err != nil {
			return
		}
		touch(b)
		// A batch that decodes re-encodes to a batch that decodes the same.
		var again []ColumnData
		for i := 0; i < b.NumColumns(); i++ {
			again = append(again, b.Column(i).Data())
		}
		out, err := Encode(BatchHeader{Kind: b.Kind, Segment: b.Segment, FirstRow: b.FirstRow, Rows: b.Rows}, again)
		if err != nil {
			t.Fatalf("re-encode of a valid batch failed: %v", err)
		}
		b2, err := DecodeBatch(out)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		for i := 0; i < b.NumColumns(); i++ {
			c1, c2 := b.Column(i), b2.Column(i)
			if string(c1.Raw()) != string(c2.Raw()) || c1.Type != c2.Type || c1.FieldID != c2.FieldID {
				t.Fatalf("column %d changed on re-encode", i)
			}
		}
	})
}

func FuzzDecodeDeletes(f *testing.F) {
	buf, _ := Encode(BatchHeader{Kind: BatchDeletes, Rows: 2}, []ColumnData{Int64Data(100, []int64{1, 2}), Int64Data(1, []int64{3, 4})})
	f.Add(buf)
	buf, _ = Encode(BatchHeader{Kind: BatchDeletes, Rows: 1}, []ColumnData{StringData(100, []string{"k"}), Int64Data(1, []int64{3})})
	f.Add(buf)
	f.Fuzz(func(t *testing.T, buf []byte) {
		d, err := DecodeDeletes(buf)
		if err != nil {
			return
		}
		touch(&d.Batch)
		if len(d.Timestamps()) != d.Rows || d.PKs().Len() != d.Rows {
			t.Fatal("deletes columns disagree with the row count")
		}
	})
}

func FuzzDecodeDecisions(f *testing.F) {
	r := make([]byte, 32)
	PutRuns(r, []Run{{0, 0, 5, 0}, {1, 7, 1, 2}})
	f.Add(uint32(EmitRuns), r)
	p := make([]byte, 8)
	PutL0Pairs(p, []L0Pair{{3, 1}})
	f.Add(uint32(EmitL0), p)
	c := make([]byte, 16)
	PutCounters(c, []Counter{{Segment: 1, Deleted: 2}})
	f.Add(uint32(EmitCounters), c)
	f.Add(uint32(9), []byte{1})
	f.Fuzz(func(t *testing.T, kind uint32, buf []byte) {
		var d Decisions
		if err := d.Add(EmitKind(kind), buf); err != nil {
			return
		}
		// Valid records re-encode to the same bytes.
		out := make([]byte, len(buf))
		switch EmitKind(kind) {
		case EmitRuns:
			PutRuns(out, d.Runs)
		case EmitL0:
			PutL0Pairs(out, d.L0)
		case EmitCounters:
			PutCounters(out, d.Counters)
		}
		if string(out) != string(buf) {
			t.Fatal("decisions changed on re-encode")
		}
	})
}

func FuzzParseTask(f *testing.F) {
	f.Add([]byte(`{"abi":1,"plan_id":1,"type":"mix","pk_type":"int64","segments":[{"id":1,"role":"input","rows":3}],"memory_grant":1,"batch_rows":1}`))
	f.Add([]byte(`{"abi":1,"type":"l0","pk_type":"string","segments":[{"role":"target","pk_min":"a","pk_max":"b"}],"columns":[{"field_id":-1,"type":"fixed"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		task, err := ParseTask(b)
		if err != nil {
			return
		}
		for i := range task.Segments {
			task.Segments[i].PKRangeInt64()
		}
		_ = task.TotalDeletes()
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"abi":1,"name":"mix","version":"1.0.0","handles":["mix"],"fields":["pk","ts","size"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseManifest(b); err == nil && m.Validate() != nil {
			t.Fatal("parsed manifest does not validate")
		}
	})
}
