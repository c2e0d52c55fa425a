package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/spf13/cobra"

	"github.com/compacthost/compacthost/storage/binlog"
	"github.com/compacthost/compacthost/storage/milvuspath"
	"github.com/compacthost/compacthost/storage/statslog"
)

func newInspectCommand() *cobra.Command {
	var (
		sf     storageFlags
		rows   int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect <key or file>",
		Short: "Show an insert binlog, storage-v2 file, deltalog, stats log or BM25 stats log in human-readable form",
		Long: `inspect decodes one Milvus storage object and shows what is in it: for a binlog, the
descriptor (IDs, payload type, extras) and its events, then the first rows of an insert binlog or
the first records of a deltalog; for a storage-v2 column-group Parquet file, its group, fields
(field ID, name, Arrow type, nullability), row groups and footer entries; for a stats log, the
primary-key range and the bloom filter; for a BM25 stats log (a key or path under bm25_stats/),
its rows, tokens and the first --rows token IDs with the rows holding each.
The argument is a local file when one exists at that path, otherwise a key in --storage.`,
		Example: `  compact-host inspect ./compact-data/files/insert_log/1/2/3/101/7
  compact-host inspect --storage s3://bucket files/stats_log/1/2/3/100/9 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return withCode(exitUsage, fmt.Errorf("inspect takes exactly one key or file, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			data, err := readObject(cmd, &sf, name)
			if err != nil {
				return err
			}
			ins, err := inspectObject(name, data, rows)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(ins)
			}
			ins.render(cmd.OutOrStdout())
			return nil
		},
	}
	sf.register(cmd.Flags())
	cmd.Flags().IntVar(&rows, "rows", 5, "how many rows, delete records or BM25 tokens to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// readObject reads a local file when name is one, otherwise the object name in the store.
func readObject(cmd *cobra.Command, sf *storageFlags, name string) ([]byte, error) {
	if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, withCode(exitFailure, err)
		}
		return data, nil
	}
	store, err := sf.open(cmd.Context())
	if err != nil {
		return nil, err
	}
	rc, err := store.Get(cmd.Context(), name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, withCode(exitNotFound, fmt.Errorf("%s: no such file, and %w", name, err))
		}
		return nil, withCode(storageCode(err), err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, withCode(exitStorage, fmt.Errorf("read %s: %w", name, err))
	}
	return data, nil
}

// inspection is what inspect shows, in a shape that serializes to JSON as is.
type inspection struct {
	Name       string          `json:"name"`
	Kind       string          `json:"kind"` // insert_binlog, deltalog, binlog, stats_log, packed, bm25_stats
	Size       int             `json:"size"`
	Descriptor *descriptorView `json:"descriptor,omitempty"`
	Events     []eventView     `json:"events,omitempty"`
	NumRows    int64           `json:"num_rows"`
	Rows       []string        `json:"rows,omitempty"` // first rows, rendered
	Deltalog   string          `json:"deltalog_format,omitempty"`
	Stats      []statsSummary  `json:"stats,omitempty"`
	Packed     *packedView     `json:"packed,omitempty"` // a storage-v2 column-group file
	BM25       *bm25View       `json:"bm25,omitempty"`
}

// descriptorView and eventView are the binlog container as inspect --json prints it: snake_case
// keys, type names instead of codes.
type descriptorView struct {
	Timestamp      uint64         `json:"timestamp"`
	CollectionID   int64          `json:"collection_id"`
	PartitionID    int64          `json:"partition_id"`
	SegmentID      int64          `json:"segment_id"`
	FieldID        int64          `json:"field_id"`
	StartTimestamp uint64         `json:"start_timestamp"`
	EndTimestamp   uint64         `json:"end_timestamp"`
	PayloadType    string         `json:"payload_type"`
	Extras         map[string]any `json:"extras"`
}

type eventView struct {
	Type           string `json:"type"`
	Timestamp      uint64 `json:"timestamp"`
	StartTimestamp uint64 `json:"start_timestamp"`
	EndTimestamp   uint64 `json:"end_timestamp"`
	PayloadOffset  int64  `json:"payload_offset"`
	PayloadLength  int64  `json:"payload_length"`
}

func viewDescriptor(d binlog.Descriptor) *descriptorView {
	return &descriptorView{Timestamp: d.Timestamp, CollectionID: d.CollectionID, PartitionID: d.PartitionID,
		SegmentID: d.SegmentID, FieldID: d.FieldID, StartTimestamp: d.StartTimestamp, EndTimestamp: d.EndTimestamp,
		PayloadType: d.PayloadType.String(), Extras: d.Extras}
}

func inspectObject(name string, data []byte, rows int) (*inspection, error) {
	ins := &inspection{Name: name, Size: len(data)}
	if isBM25Key(name) {
		return ins, inspectBM25(ins, data, rows)
	}
	if len(data) >= 4 && binary.LittleEndian.Uint32(data) == binlog.Magic {
		return ins, inspectBinlog(ins, data, rows)
	}
	if bytes.HasPrefix(data, []byte("PAR1")) {
		return ins, inspectPacked(ins, data)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') || bytes.HasPrefix(data, []byte(statslog.BinaryMagic)) {
		return ins, inspectStats(ins, data)
	}
	return ins, fmt.Errorf("%s: neither a binlog (no magic 0x%08X at offset 0), a storage-v2 Parquet file (PAR1), a stats log (JSON or %q) nor a BM25 stats log (a key under %s/)",
		name, binlog.Magic, statslog.BinaryMagic, milvuspath.BM25LogDir)
}

func inspectBinlog(ins *inspection, data []byte, rows int) error {
	r := bytes.NewReader(data)
	f, err := binlog.ReadFile(ins.Name, r, int64(len(data)))
	if err != nil {
		return err
	}
	ins.Kind, ins.Descriptor = "binlog", viewDescriptor(f.Descriptor)
	for _, ev := range f.Events {
		ins.Events = append(ins.Events, eventView{Type: ev.Type.String(), Timestamp: ev.Timestamp,
			StartTimestamp: ev.StartTimestamp, EndTimestamp: ev.EndTimestamp,
			PayloadOffset: ev.PayloadOffset, PayloadLength: ev.PayloadLength})
	}
	switch f.Events[0].Type {
	case binlog.DeleteEvent:
		ins.Kind = "deltalog"
		return inspectDeltalog(ins, data, rows)
	case binlog.InsertEvent:
		ins.Kind = "insert_binlog"
		return inspectInsert(ins, f, r, rows)
	}
	return nil
}

func inspectInsert(ins *inspection, f *binlog.File, r io.ReaderAt, rows int) error {
	field, err := binlog.FieldFromFile(f, r)
	if err != nil {
		return fmt.Errorf("binlog %q: %w", ins.Name, err)
	}
	ir, err := binlog.NewInsertReader(ins.Name, r, int64(ins.Size), field, max(rows, 1))
	if err != nil {
		return err
	}
	defer ir.Close()
	ins.NumRows = ir.NumRows()
	if rows <= 0 {
		return nil
	}
	col, err := ir.Next()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	defer col.Release()
	for i := 0; i < col.Len() && i < rows; i++ {
		ins.Rows = append(ins.Rows, renderCell(field.DataType, col, i))
	}
	return nil
}

// renderCell shows one value: float vectors as their first components, other values as Arrow
// prints them, cut to one line.
func renderCell(t schemapb.DataType, col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "null"
	}
	if fsb, ok := col.(*array.FixedSizeBinary); ok && t == schemapb.DataType_FloatVector {
		v := fsb.Value(i)
		var parts []string
		for off := 0; off+4 <= len(v) && len(parts) < 6; off += 4 {
			parts = append(parts, strconv.FormatFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(v[off:]))), 'g', 4, 32))
		}
		return fmt.Sprintf("[%s, ...] (dim %d)", strings.Join(parts, ", "), len(v)/4)
	}
	s := col.ValueStr(i)
	if len(s) > 96 {
		s = s[:93] + "..."
	}
	return s
}
