package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
)

// storeFiles reads every object of a local store.
func storeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRunRefusesDangerousPlans: the real binary refuses, with exit 4 and a
// message naming the plan, plans whose outputs would overwrite inputs or
// duplicate rows, and plans with negative row counts; the store is left
// byte for byte as it was, with no new object.
func TestRunRefusesDangerousPlans(t *testing.T) {
	store, plans, _ := genDemo(t)
	b, err := os.ReadFile(filepath.Join(plans, "mix-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := host.DecodePlan(b)
	if err != nil {
		t.Fatal(err)
	}
	seg0 := base.GetSegmentBinlogs()[0]
	firstLog := seg0.GetFieldBinlogs()[0].GetBinlogs()[0].GetLogID()
	before := storeFiles(t, store)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		mut  func(p *datapb.CompactionPlan)
		want string
	}{
		{"segment range holds an input segment", func(p *datapb.CompactionPlan) {
			p.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: seg0.GetSegmentID(), End: seg0.GetSegmentID() + 110_000}
		}, "holds input segment"},
		{"outputs would be the input's keys", func(p *datapb.CompactionPlan) {
			// Output 0 would be segment 0 and its first chunk the input's
			// first chunk: the same keys.
			p.PreAllocatedSegmentIDs = &datapb.IDRange{Begin: seg0.GetSegmentID(), End: seg0.GetSegmentID() + 110_000}
			p.PreAllocatedLogIDs = &datapb.IDRange{Begin: firstLog, End: firstLog + 1_000_000}
			p.BeginLogID = firstLog
		}, "holds input log ID"},
		{"duplicate segment", func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs = append(p.SegmentBinlogs, proto.Clone(seg0).(*datapb.CompactionSegmentBinlogs))
		}, "is listed twice"},
		{"negative entriesNum", func(p *datapb.CompactionPlan) {
			p.SegmentBinlogs[1].FieldBinlogs[2].Binlogs[0].EntriesNum = -1
		}, "negative entries_num -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := proto.Clone(base).(*datapb.CompactionPlan)
			c.mut(p)
			js, err := protojson.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			if err := os.WriteFile(path, js, 0o644); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, "--plugin", mixWasm, "--plan", path, "--storage", store)
			msg := lastLine(r.stderr)
			if r.code != exitBadInput || !strings.Contains(msg, "invalid compaction plan: plan ") || !strings.Contains(msg, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with a plan error containing %q", r.code, r.stderr, exitBadInput, c.want)
			}
			after := storeFiles(t, store)
			for k, v := range after {
				if old, ok := before[k]; !ok {
					t.Errorf("new object %s", k)
				} else if !bytes.Equal(old, v) {
					t.Errorf("object %s changed", k)
				}
			}
			if len(after) != len(before) {
				t.Errorf("%d objects after the run, %d before", len(after), len(before))
			}
		})
	}
}
