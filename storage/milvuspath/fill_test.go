package milvuspath

import (
	"strings"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

func binlogs(ids ...int64) []*datapb.Binlog {
	var out []*datapb.Binlog
	for _, id := range ids {
		out = append(out, &datapb.Binlog{LogID: id})
	}
	return out
}

func paths(fbs []*datapb.FieldBinlog) []string {
	var out []string
	for _, fb := range fbs {
		for _, b := range fb.GetBinlogs() {
			out = append(out, b.GetLogPath())
		}
	}
	return out
}

func TestFillSegment(t *testing.T) {
	seg := &datapb.CompactionSegmentBinlogs{
		CollectionID: 10, PartitionID: 20, SegmentID: 30,
		FieldBinlogs: []*datapb.FieldBinlog{
			{FieldID: 0, Binlogs: binlogs(501, 505)},
			{FieldID: 100, Binlogs: []*datapb.Binlog{{LogID: 502}, {LogID: 506, LogPath: "elsewhere/kept/as/is"}}},
		},
		Field2StatslogPaths: []*datapb.FieldBinlog{{FieldID: 100, Binlogs: binlogs(1)}},
		// Deltalogs have no field level; a stray FieldID is ignored.
		Deltalogs: []*datapb.FieldBinlog{{FieldID: 7, Binlogs: binlogs(600, 601)}},
	}
	if err := FillSegment("files", seg); err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s paths = %q, want %q", name, got, want)
		}
	}
	check("insert", paths(seg.FieldBinlogs), []string{
		"files/insert_log/10/20/30/0/501", "files/insert_log/10/20/30/0/505",
		"files/insert_log/10/20/30/100/502", "elsewhere/kept/as/is",
	})
	check("stats", paths(seg.Field2StatslogPaths), []string{"files/stats_log/10/20/30/100/1"})
	check("delta", paths(seg.Deltalogs), []string{"files/delta_log/10/20/30/600", "files/delta_log/10/20/30/601"})
	// Filling twice changes nothing.
	if err := FillSegment("other-root", seg); err != nil {
		t.Fatal(err)
	}
	check("delta after refill", paths(seg.Deltalogs), []string{"files/delta_log/10/20/30/600", "files/delta_log/10/20/30/601"})
}

func TestFillErrors(t *testing.T) {
	cases := []struct {
		seg  *datapb.CompactionSegmentBinlogs
		want string
	}{
		{nil, "nil CompactionSegmentBinlogs"},
		{&datapb.CompactionSegmentBinlogs{SegmentID: 5, FieldBinlogs: []*datapb.FieldBinlog{{FieldID: 101, Binlogs: binlogs(0)}}},
			"segment 5 field 101: insert_log binlog 0 has an empty log_path and logID 0"},
		{&datapb.CompactionSegmentBinlogs{SegmentID: 5, Deltalogs: []*datapb.FieldBinlog{nil}},
			"segment 5: delta_log entry 0 is nil"},
		{&datapb.CompactionSegmentBinlogs{SegmentID: 5, Field2StatslogPaths: []*datapb.FieldBinlog{{FieldID: 100, Binlogs: []*datapb.Binlog{nil}}}},
			"segment 5 field 100: stats_log binlog 0 is nil"},
	}
	for _, c := range cases {
		err := FillSegment("files", c.seg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FillSegment: err %v, want %q", err, c.want)
		}
	}
	plan := &datapb.CompactionPlan{PlanID: 77, SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{
		{SegmentID: 1, Deltalogs: []*datapb.FieldBinlog{{Binlogs: binlogs(3)}}},
		{SegmentID: 2, Deltalogs: []*datapb.FieldBinlog{{Binlogs: binlogs(-1)}}},
	}}
	if err := FillPlan("r", plan); err == nil || !strings.Contains(err.Error(), "plan 77: milvuspath: segment 2") {
		t.Errorf("FillPlan: err %v", err)
	}
	if err := FillPlan("r", nil); err == nil {
		t.Error("FillPlan(nil) succeeded")
	}
	if err := FillPaths("r", Kind(9), 1, 2, 3, nil); err == nil || !strings.Contains(err.Error(), "unknown log kind 9") {
		t.Errorf("FillPaths with bad kind: err %v", err)
	}
}
