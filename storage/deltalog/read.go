package deltalog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/binlog"
)

// readBatchRows bounds the rows decoded from Parquet at a time.
const readBatchRows = 64 << 10

// Read decodes the deltalog stored under key (r holds size bytes) and reports its
// format. As Milvus does, only the first data event is read, and the format is
// chosen by the descriptor extras "version". Errors name key and, for a bad
// entry, its row number and content. An object with no rows yields empty Deletes
// whose PKType is the payload's pk type when known (MULTI_FIELD) or None.
func Read(key string, r io.ReaderAt, size int64) (*Deletes, Format, error) {
	return read(key, r, size, nil)
}

// ReadFor is Read for a deltalog a plan lists under owner: a descriptor that
// names another collection, partition or segment is an error marked
// corrupt.Err. Milvus writes the segment's own IDs into every deltalog, L0
// segments' included (with their partition, -1 for all partitions).
func ReadFor(key string, r io.ReaderAt, size int64, owner binlog.Owner) (*Deletes, Format, error) {
	return read(key, r, size, &owner)
}

func read(key string, r io.ReaderAt, size int64, owner *binlog.Owner) (*Deletes, Format, error) {
	bf, err := binlog.ReadFile(key, r, size)
	if err != nil {
		return nil, 0, fmt.Errorf("deltalog: %w", err)
	}
	if owner != nil {
		if err := bf.Descriptor.CheckOwner(*owner); err != nil {
			return nil, 0, fmt.Errorf("deltalog %q: %w", key, err)
		}
	}
	d, f, err := decode(bf, r)
	if err != nil {
		return nil, f, fmt.Errorf("deltalog %q (%v format): %w", key, f, err)
	}
	return d, f, nil
}

func decode(bf *binlog.File, r io.ReaderAt) (d *Deletes, f Format, err error) {
	desc := bf.Descriptor
	if bf.Events[0].Type != binlog.DeleteEvent {
		return nil, f, fmt.Errorf("first event is %v, want DeleteEvent", bf.Events[0].Type)
	}
	if desc.Version() == MultiFieldVersion {
		f = FormatMultiField
		if desc.PayloadType != schemapb.DataType_Int64 {
			return nil, f, fmt.Errorf("descriptor payload type %v, want Int64", desc.PayloadType)
		}
	} else if desc.PayloadType != schemapb.DataType_String && desc.PayloadType != schemapb.DataType_VarChar {
		return nil, f, fmt.Errorf("descriptor payload type %v, want String", desc.PayloadType)
	}
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("malformed Parquet payload (decoder panic: %v)", p)
		}
	}()
	pf, err := file.NewParquetReader(bf.Payload(r, 0))
	if err != nil {
		return nil, f, fmt.Errorf("payload is not Parquet: %w", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: readBatchRows}, memory.DefaultAllocator)
	if err != nil {
		return nil, f, fmt.Errorf("payload Parquet schema: %w", err)
	}
	want := 1
	if f == FormatMultiField {
		want = 2
	}
	if n := pf.MetaData().Schema.NumColumns(); n < want {
		return nil, f, fmt.Errorf("payload has %d columns, want %d", n, want)
	}
	cols := []int{0}
	if f == FormatMultiField {
		cols = []int{0, 1}
	}
	rr, err := fr.GetRecordReader(context.Background(), cols, nil)
	if err != nil {
		return nil, f, fmt.Errorf("payload Parquet reader: %w", err)
	}
	defer rr.Release()
	d = &Deletes{}
	rows := int(min(max(pf.NumRows(), 0), 1<<20)) // capacity hint, bounded against lying metadata
	d.Timestamps = make([]uint64, 0, rows)
	var batch func(arrow.RecordBatch) error
	if f == FormatMultiField {
		if err := multiFieldSchema(rr.Schema(), d); err != nil {
			return nil, f, err
		}
		batch = func(rec arrow.RecordBatch) error { return appendMultiField(d, rec) }
	} else {
		if t := rr.Schema().Field(0).Type.ID(); t != arrow.STRING && t != arrow.BINARY {
			return nil, f, fmt.Errorf("payload column %q is %s, want string", rr.Schema().Field(0).Name, rr.Schema().Field(0).Type)
		}
		p := &rowParser{d: d, hint: rows}
		batch = func(rec arrow.RecordBatch) error { return p.batch(rec.Column(0)) }
	}
	for rr.Next() {
		if err := batch(rr.RecordBatch()); err != nil {
			return nil, f, err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, f, fmt.Errorf("payload Parquet data: %w", err)
	}
	return d, f, nil
}

func multiFieldSchema(sc *arrow.Schema, d *Deletes) error {
	pk, ts := sc.Field(0), sc.Field(1)
	switch pk.Type.ID() {
	case arrow.INT64:
		d.PKType = schemapb.DataType_Int64
		d.IntPKs = make([]int64, 0, cap(d.Timestamps))
	case arrow.STRING:
		d.PKType = schemapb.DataType_VarChar
		d.StrPKs = make([]string, 0, cap(d.Timestamps))
	default:
		return fmt.Errorf("pk column %q is %s, want int64 or string", pk.Name, pk.Type)
	}
	if ts.Type.ID() != arrow.INT64 {
		return fmt.Errorf("ts column %q is %s, want int64", ts.Name, ts.Type)
	}
	return nil
}

func appendMultiField(d *Deletes, rec arrow.RecordBatch) error {
	base := d.Len()
	pkCol, tsCol := rec.Column(0), rec.Column(1)
	if pkCol.NullN() > 0 || tsCol.NullN() > 0 {
		return fmt.Errorf("rows %d..%d: null pk or ts", base, base+int(rec.NumRows())-1)
	}
	for i, ts := range tsCol.(*array.Int64).Int64Values() {
		if ts < 0 {
			return fmt.Errorf("row %d: negative timestamp %d", base+i, ts)
		}
		d.Timestamps = append(d.Timestamps, uint64(ts))
	}
	switch c := pkCol.(type) {
	case *array.Int64:
		d.IntPKs = append(d.IntPKs, c.Int64Values()...)
	case *array.String:
		// One copy per batch; the pks are substrings of it.
		all, offs := string(c.ValueBytes()), c.ValueOffsets()
		for i := 0; i < c.Len(); i++ {
			d.StrPKs = append(d.StrPKs, all[offs[i]-offs[0]:offs[i+1]-offs[0]])
		}
	}
	return nil
}
