package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestGenV2ThenInspect writes a storage-v2 collection with the real binary, checks the plan
// says v2, and inspects one column-group file by path (text) and by key (--json).
func TestGenV2ThenInspect(t *testing.T) {
	dir := t.TempDir()
	store, plans := filepath.Join(dir, "data"), filepath.Join(dir, "plans")
	r := runCLI(t, "gen", "--storage", store, "--plans", plans, "--segments", "2", "--rows", "500", "--dim", "4",
		"--storage-version", "2", "--json")
	if r.code != 0 {
		t.Fatalf("gen exit %d: %s", r.code, r.stderr)
	}
	var sum struct {
		StorageVersion int64 `json:"storage_version"`
		Rows           int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.StorageVersion != 2 || sum.Rows != 1000 {
		t.Fatalf("gen --json summary %+v (%v)\n%s", sum, err, r.stdout)
	}
	if params, versions := planVersions(t, filepath.Join(plans, "mix-plan.json")); params != 2 || !slices.Equal(versions, []int64{2, 2}) {
		t.Fatalf("mix plan: json_params storage_version %d, segment versions %v; want 2 and [2 2]", params, versions)
	}

	var file string
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "/insert_log/") && filepath.Base(filepath.Dir(p)) == "1" && file == "" {
			file = p
		}
		return nil
	})
	r = runCLI(t, "inspect", file)
	for _, want := range []string{
		"kind: packed",
		"storage v2 column-group file: group 1 (index 1 of 3), 500 rows in 1 row groups",
		`field 102 "category": int32, required`,
		`field 103 "price": float64, nullable`,
		`field 104 "title": utf8, nullable`,
		`field 105 "in_stock": bool, required`,
		`field 106 "$meta": binary, required`,
		"row group 0: 500 rows, ",
		"footer group_field_id_list: 0,1,100;102,103,104,105,106;101",
		"footer row_group_metadata: ",
		"footer storage_version: 1.0.0",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("inspect v2 file: exit %d, output lacks %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}

	key, _ := filepath.Rel(store, file)
	r = runCLI(t, "inspect", "--storage", store, filepath.ToSlash(key), "--json")
	var ins struct {
		Kind    string
		NumRows int64 `json:"num_rows"`
		Packed  struct {
			GroupID    int64     `json:"group_id"`
			GroupIndex int       `json:"group_index"`
			Groups     [][]int64 `json:"groups"`
			Fields     []struct {
				ID       int64
				Name     string
				Type     string
				Nullable bool
			}
			RowGroups []struct {
				Rows            int64
				CompressedBytes int64 `json:"compressed_bytes"`
				MemorySize      int64 `json:"memory_size"`
			} `json:"row_groups"`
			Footer struct {
				GroupFieldIDList string `json:"group_field_id_list"`
				RowGroupMetadata string `json:"row_group_metadata"`
				StorageVersion   string `json:"storage_version"`
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil || r.code != 0 {
		t.Fatalf("inspect --json v2 file: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	p := ins.Packed
	if ins.Kind != "packed" || ins.NumRows != 500 || p.GroupID != 1 || p.GroupIndex != 1 ||
		!reflect.DeepEqual(p.Groups, [][]int64{{0, 1, 100}, {102, 103, 104, 105, 106}, {101}}) ||
		len(p.Fields) != 5 || p.Fields[2].ID != 104 || p.Fields[2].Name != "title" || p.Fields[2].Type != "utf8" || !p.Fields[2].Nullable ||
		len(p.RowGroups) != 1 || p.RowGroups[0].Rows != 500 || p.RowGroups[0].CompressedBytes <= 0 ||
		p.Footer.GroupFieldIDList != "0,1,100;102,103,104,105,106;101" || p.Footer.StorageVersion != "1.0.0" ||
		!strings.HasSuffix(p.Footer.RowGroupMetadata, "|500|0") {
		t.Fatalf("inspect --json v2 file: %+v", ins)
	}
}

// TestGenMixedVersions: --mixed-versions writes v2 and v1 segments, and the plans then ask for
// v1 output.
func TestGenMixedVersions(t *testing.T) {
	dir := t.TempDir()
	plans := filepath.Join(dir, "plans")
	r := runCLI(t, "gen", "--storage", filepath.Join(dir, "data"), "--plans", plans, "--segments", "3", "--rows", "200",
		"--dim", "4", "--storage-version", "2", "--mixed-versions")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote 3 segments in storage v2 and v1, alternating") {
		t.Fatalf("gen --mixed-versions: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if params, versions := planVersions(t, filepath.Join(plans, "mix-plan.json")); params != 0 || !slices.Equal(versions, []int64{2, 0, 2}) {
		t.Fatalf("mixed plan: json_params storage_version %d, segment versions %v; want 0 and [2 0 2]", params, versions)
	}
}

// planVersions reads a plan file and returns its json_params storage_version and its segments'.
func planVersions(t *testing.T, path string) (int64, []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var plan datapb.CompactionPlan
	if err := protojson.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	var params struct {
		StorageVersion int64 `json:"storage_version"`
	}
	if err := json.Unmarshal([]byte(plan.JsonParams), &params); err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, s := range plan.SegmentBinlogs {
		versions = append(versions, s.StorageVersion)
	}
	return params.StorageVersion, versions
}
