package packed

import (
	"reflect"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func TestSplitGroups(t *testing.T) {
	pk := func(id int64, name string) *schemapb.FieldSchema {
		f := field(id, name, schemapb.DataType_Int64, 0, false)
		f.IsPrimaryKey = true
		return f
	}
	vec := func(id int64) *schemapb.FieldSchema { return field(id, "vec", schemapb.DataType_FloatVector, 8, false) }
	str := func(id int64, name string) *schemapb.FieldSchema {
		return field(id, name, schemapb.DataType_VarChar, 0, false)
	}
	sys := []*schemapb.FieldSchema{field(0, "RowID", schemapb.DataType_Int64, 0, false),
		field(1, "Timestamp", schemapb.DataType_Int64, 0, false)}
	schema := func(fs ...*schemapb.FieldSchema) *schemapb.CollectionSchema {
		return &schemapb.CollectionSchema{Fields: append(fs, sys...)}
	}
	part := str(102, "cat")
	part.IsPartitionKey = true
	clus := field(103, "ts", schemapb.DataType_Int64, 0, false)
	clus.IsClusteringKey = true
	text := field(105, "body", schemapb.DataType_Text, 0, false)
	sparse := field(106, "sparse", schemapb.DataType_SparseFloatVector, 0, false)
	withStruct := schema(pk(100, "pk"), vec(101), str(102, "title"))
	withStruct.StructArrayFields = []*schemapb.StructArrayFieldSchema{{FieldID: 200, Name: "st", Fields: []*schemapb.FieldSchema{
		field(201, "st_tags", schemapb.DataType_Array, 0, false),
		field(202, "st_vecs", schemapb.DataType_ArrayOfVector, 4, false),
	}}}
	def := DefaultSplitPolicy()
	noPK := def
	noPK.IncludePK = false
	legacy := def
	legacy.SplitSystemColumn = false
	avg := def
	avg.SplitByAvgSize = true

	for _, tc := range []struct {
		name    string
		schema  *schemapb.CollectionSchema
		policy  SplitPolicy
		avgSize map[int64]int64
		want    string // group_field_id_list
		ids     []int64
	}{
		// milvus-storage-v2.md §3, "Typical results with the defaults".
		{"spec example", schema(pk(100, "pk"), vec(101), str(102, "title"), field(103, "$meta", schemapb.DataType_JSON, 0, false)),
			def, nil, "100,0,1;102,103;101", []int64{0, 1, 101}},
		{"partition and clustering keys join group 0 in field order",
			schema(pk(100, "pk"), vec(101), part, clus, str(104, "title")),
			def, nil, "100,102,103,0,1;104;101", []int64{0, 1, 101}},
		{"includePK off", schema(pk(100, "pk"), vec(101), str(102, "title")),
			noPK, nil, "0,1;100,102;101", []int64{0, 1, 101}},
		{"legacy split: no system group", schema(pk(100, "pk"), vec(101), part, clus, str(104, "title")),
			legacy, nil, "100,102,103,104,0,1;101", []int64{0, 101}},
		{"Text and sparse vectors get their own groups", schema(pk(100, "pk"), text, str(102, "title"), sparse),
			def, nil, "100,0,1;102;105;106", []int64{0, 1, 105, 106}},
		{"no remaining fields: no group 1", schema(pk(100, "pk"), vec(101)),
			def, nil, "100,0,1;101", []int64{0, 101}},
		{"average size: at or over the threshold splits off", schema(pk(100, "pk"), str(102, "a"), str(103, "b"), str(104, "c")),
			avg, map[int64]int64{102: 1023, 103: 1024, 100: 4096}, "100,0,1;102,104;103", []int64{0, 1, 103}},
		{"average size off ignores the sizes", schema(pk(100, "pk"), str(102, "a"), str(103, "b")),
			def, map[int64]int64{103: 1 << 20}, "100,0,1;102,103", []int64{0, 1}},
		{"struct array sub-fields come after the schema's fields", withStruct,
			def, nil, "100,0,1;102,201;101;202", []int64{0, 1, 101, 202}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups, err := SplitGroups(tc.schema, tc.policy, tc.avgSize)
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatGroupFieldIDList(groups); got != tc.want {
				t.Errorf("group_field_id_list %q, want %q", got, tc.want)
			}
			var ids []int64
			for _, g := range groups {
				ids = append(ids, g.ID)
			}
			if !reflect.DeepEqual(ids, tc.ids) {
				t.Errorf("group IDs %v, want %v", ids, tc.ids)
			}
			// Milvus' index builder reads groups below 100 at list[groupID].
			for i, g := range groups {
				if g.ID < startOfUserFieldID && int64(i) != g.ID {
					t.Errorf("group %d sits at list position %d", g.ID, i)
				}
			}
			parsed, err := ParseGroupFieldIDList(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range groups {
				if !reflect.DeepEqual(parsed[i], g.Fields) {
					t.Errorf("parsed group %d = %v, want %v", i, parsed[i], g.Fields)
				}
			}
		})
	}
}

func TestSplitGroupsRejectsDuplicateFieldIDs(t *testing.T) {
	s := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		field(100, "a", schemapb.DataType_Int64, 0, false), field(100, "b", schemapb.DataType_Int64, 0, false)}}
	if _, err := SplitGroups(s, DefaultSplitPolicy(), nil); err == nil || !strings.Contains(err.Error(), "field 100 twice") {
		t.Fatalf("got %v", err)
	}
}

func TestParseGroupFieldIDList(t *testing.T) {
	got, err := ParseGroupFieldIDList(";100,,0,1;;102;")
	if err != nil || !reflect.DeepEqual(got, [][]int64{{100, 0, 1}, {102}}) {
		t.Fatalf("empty tokens: %v, %v", got, err)
	}
	for in, frag := range map[string]string{
		"100,x;101":              `"x" is not a field ID`,
		"100,0;0":                "lists field 0 twice",
		"1;99999999999999999999": `"99999999999999999999" is not a field ID`,
	} {
		if _, err := ParseGroupFieldIDList(in); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%q: got %v, want %q", in, err, frag)
		}
	}
}

func TestRowGroupMetadata(t *testing.T) {
	rgs := []RowGroup{{1048560, 43690, 0}, {1048560, 43690, 43690}, {12000, 500, 87380}}
	s := FormatRowGroupMetadata(rgs)
	if s != "1048560|43690|0;1048560|43690|43690;12000|500|87380" {
		t.Fatalf("format: %q", s)
	}
	got, err := ParseRowGroupMetadata(s + ";")
	if err != nil || !reflect.DeepEqual(got, rgs) {
		t.Fatalf("parse: %v, %v", got, err)
	}
	for in, frag := range map[string]string{
		"1|2":     "does not have 3 |-separated parts",
		"1|2|3|4": "does not have 3 |-separated parts",
		"1|-2|0":  `"-2" is not a non-negative integer`,
		"1|a|0":   `"a" is not a non-negative integer`,
	} {
		if _, err := ParseRowGroupMetadata(in); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%q: got %v, want %q", in, err, frag)
		}
	}
}
