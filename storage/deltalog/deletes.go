// Package deltalog reads and writes Milvus deltalogs: binlogs under
// delta_log/{coll}/{part}/{seg}/{logID} whose single DeleteEvent carries
// (primary key, delete timestamp) pairs.
//
// Two encodings exist (milvus-formats.md §9.7):
//
//   - FormatJSON, what DeleteCodec (and so L0 compaction and the default flush
//     path) writes: a one-column Parquet string payload, one JSON object
//     {"pk":..,"ts":..,"pkType":..} per row; very old files hold "pk,ts" text rows.
//   - FormatMultiField, extras version "MULTI_FIELD": a Parquet payload with an
//     Int64 or String column pk and an Int64 column ts.
//
// Read accepts both, for Int64 and VarChar pks; Write produces either, FormatJSON
// being what current Milvus writes. Map is the per-segment pk -> max delete ts
// map of §2.1 with the strict row_ts < delete_ts rule.
package deltalog

import (
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Format identifies a deltalog encoding.
type Format int

const (
	// FormatJSON is the JSON-string-per-row encoding (payload type String).
	FormatJSON Format = iota
	// FormatMultiField is the two-column pk/ts encoding (extras version MULTI_FIELD).
	FormatMultiField
)

// String returns "json" or "multi_field".
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatMultiField:
		return "multi_field"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Deletes is a list of delete records in file order. Exactly one of IntPKs and
// StrPKs is used, chosen by PKType (schemapb.DataType_Int64 or _VarChar); each
// entry pairs with Timestamps at the same index.
type Deletes struct {
	PKType     schemapb.DataType
	IntPKs     []int64
	StrPKs     []string
	Timestamps []uint64
}

// Len returns the number of delete records.
func (d *Deletes) Len() int { return len(d.Timestamps) }

// AppendInt64 adds a delete of Int64 pk at ts. A Deletes with no PKType takes
// Int64; appending to VarChar deletes is an error.
func (d *Deletes) AppendInt64(pk int64, ts uint64) error {
	if err := d.setType(schemapb.DataType_Int64); err != nil {
		return err
	}
	d.IntPKs = append(d.IntPKs, pk)
	d.Timestamps = append(d.Timestamps, ts)
	return nil
}

// AppendVarChar adds a delete of VarChar pk at ts. A Deletes with no PKType takes
// VarChar; appending to Int64 deletes is an error.
func (d *Deletes) AppendVarChar(pk string, ts uint64) error {
	if err := d.setType(schemapb.DataType_VarChar); err != nil {
		return err
	}
	d.StrPKs = append(d.StrPKs, pk)
	d.Timestamps = append(d.Timestamps, ts)
	return nil
}

// Append adds all of o's records; both must have the same pk type unless one is empty.
func (d *Deletes) Append(o *Deletes) error {
	if o.Len() == 0 {
		return nil
	}
	if err := d.setType(o.PKType); err != nil {
		return err
	}
	d.IntPKs = append(d.IntPKs, o.IntPKs...)
	d.StrPKs = append(d.StrPKs, o.StrPKs...)
	d.Timestamps = append(d.Timestamps, o.Timestamps...)
	return nil
}

func (d *Deletes) setType(t schemapb.DataType) error {
	if d.PKType == schemapb.DataType_None && d.Len() == 0 {
		d.PKType = t
	}
	if d.PKType != t {
		return fmt.Errorf("deltalog: %v pk appended to %v deletes", t, d.PKType)
	}
	return nil
}

// check validates the internal consistency of d before it is written.
func (d *Deletes) check() error {
	switch d.PKType {
	case schemapb.DataType_Int64:
		if len(d.IntPKs) != len(d.Timestamps) || len(d.StrPKs) != 0 {
			return fmt.Errorf("%d Int64 pks, %d VarChar pks for %d timestamps", len(d.IntPKs), len(d.StrPKs), len(d.Timestamps))
		}
	case schemapb.DataType_VarChar:
		if len(d.StrPKs) != len(d.Timestamps) || len(d.IntPKs) != 0 {
			return fmt.Errorf("%d VarChar pks, %d Int64 pks for %d timestamps", len(d.StrPKs), len(d.IntPKs), len(d.Timestamps))
		}
	default:
		return fmt.Errorf("pk type %v is neither Int64 nor VarChar", d.PKType)
	}
	return nil
}

// MemorySize is Milvus's in-memory size of the deletes (Binlog.memory_size of a
// deltalog): 16 bytes per Int64 pk or len+8 per VarChar pk, plus 8 per timestamp.
func (d *Deletes) MemorySize() int64 {
	n := int64(len(d.IntPKs))*16 + int64(len(d.Timestamps))*8
	for _, s := range d.StrPKs {
		n += int64(len(s)) + 8
	}
	return n
}

// tsRange returns the smallest and largest timestamp; both 0 when d is empty.
func (d *Deletes) tsRange() (lo, hi uint64) {
	for i, ts := range d.Timestamps {
		if i == 0 || ts < lo {
			lo = ts
		}
		if ts > hi {
			hi = ts
		}
	}
	return lo, hi
}
