package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/compacthost/compacthost/storage/deltalog"
	"github.com/compacthost/compacthost/storage/statslog"
	"github.com/compacthost/compacthost/storage/tso"
)

func inspectDeltalog(ins *inspection, data []byte, rows int) error {
	d, format, err := deltalog.Read(ins.Name, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	ins.Deltalog, ins.NumRows = format.String(), int64(d.Len())
	for i := 0; i < d.Len() && i < rows; i++ {
		pk := ""
		if d.PKType == schemapb.DataType_VarChar {
			pk = strconv.Quote(d.StrPKs[i])
		} else {
			pk = strconv.FormatInt(d.IntPKs[i], 10)
		}
		ts := d.Timestamps[i]
		ins.Rows = append(ins.Rows, fmt.Sprintf("pk=%s ts=%d (%s)", pk, ts, tso.Time(ts).Format("2006-01-02T15:04:05.000Z")))
	}
	return nil
}

// statsSummary is one primary-key stats object as inspect shows it.
type statsSummary struct {
	FieldID     int64  `json:"field_id"`
	PKType      string `json:"pk_type"`
	Min         string `json:"min,omitempty"`
	Max         string `json:"max,omitempty"`
	BloomFilter string `json:"bloom_filter"`
	FilterBytes int    `json:"filter_json_bytes"`
}

func inspectStats(ins *inspection, data []byte) error {
	list, err := statslog.Decode(ins.Name, data)
	if err != nil {
		return err
	}
	ins.Kind = "stats_log"
	for _, s := range list {
		sum := statsSummary{FieldID: s.FieldID, PKType: s.PKType.String(), BloomFilter: s.Filter.Type().String()}
		if s.HasRange {
			sum.Min, sum.Max = pkString(s.PKType, s.Min), pkString(s.PKType, s.Max)
		}
		if m, ok := s.Filter.(json.Marshaler); ok {
			if b, err := m.MarshalJSON(); err == nil {
				sum.FilterBytes = len(b)
			}
		}
		ins.Stats = append(ins.Stats, sum)
	}
	return nil
}

func pkString(t schemapb.DataType, pk statslog.PK) string {
	if t == schemapb.DataType_VarChar {
		return strconv.Quote(pk.Str)
	}
	return strconv.FormatInt(pk.Int, 10)
}

func (ins *inspection) render(w io.Writer) {
	fmt.Fprintf(w, "%s\n  kind: %s, %d bytes\n", ins.Name, ins.Kind, ins.Size)
	if d := ins.Descriptor; d != nil {
		fmt.Fprintf(w, "  descriptor: collection %d, partition %d, segment %d, field %d, payload %s\n",
			d.CollectionID, d.PartitionID, d.SegmentID, d.FieldID, d.PayloadType)
		extras, _ := json.Marshal(d.Extras)
		fmt.Fprintf(w, "  extras: %s\n", extras)
		for i, ev := range ins.Events {
			fmt.Fprintf(w, "  event %d: %s, ts [%d, %d], payload %d bytes at offset %d\n",
				i, ev.Type, ev.StartTimestamp, ev.EndTimestamp, ev.PayloadLength, ev.PayloadOffset)
		}
	}
	if ins.Kind == "deltalog" {
		fmt.Fprintf(w, "  format: %s, %d delete records\n", ins.Deltalog, ins.NumRows)
	} else if ins.Kind == "insert_binlog" {
		fmt.Fprintf(w, "  rows: %d\n", ins.NumRows)
	}
	if ins.Packed != nil {
		ins.Packed.render(w, ins.NumRows)
	}
	if ins.BM25 != nil {
		ins.BM25.render(w)
	}
	if len(ins.Rows) > 0 {
		fmt.Fprintf(w, "  first %d:\n    %s\n", len(ins.Rows), strings.Join(ins.Rows, "\n    "))
	}
	for _, s := range ins.Stats {
		fmt.Fprintf(w, "  pk stats: field %d (%s), range [%s, %s], bloom filter %s (%d bytes of JSON)\n",
			s.FieldID, s.PKType, s.Min, s.Max, s.BloomFilter, s.FilterBytes)
	}
}
