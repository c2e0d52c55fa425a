package segread

import (
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func TestBuildFillDefaults(t *testing.T) {
	vf := func(d any) *schemapb.ValueField {
		switch d := d.(type) {
		case bool:
			return &schemapb.ValueField{Data: &schemapb.ValueField_BoolData{BoolData: d}}
		case int32:
			return &schemapb.ValueField{Data: &schemapb.ValueField_IntData{IntData: d}}
		case int64:
			return &schemapb.ValueField{Data: &schemapb.ValueField_LongData{LongData: d}}
		case float32:
			return &schemapb.ValueField{Data: &schemapb.ValueField_FloatData{FloatData: d}}
		case float64:
			return &schemapb.ValueField{Data: &schemapb.ValueField_DoubleData{DoubleData: d}}
		case string:
			return &schemapb.ValueField{Data: &schemapb.ValueField_StringData{StringData: d}}
		case []byte:
			return &schemapb.ValueField{Data: &schemapb.ValueField_BytesData{BytesData: d}}
		}
		panic(d)
	}
	cases := []struct {
		typ  schemapb.DataType
		dv   *schemapb.ValueField
		want string // the array as Arrow prints it, or an error fragment
	}{
		{schemapb.DataType_Bool, vf(true), "[true true]"},
		{schemapb.DataType_Int8, vf(int32(-3)), "[-3 -3]"},
		{schemapb.DataType_Int16, vf(int32(300)), "[300 300]"},
		{schemapb.DataType_Int64, vf(int64(1) << 40), "[1099511627776 1099511627776]"},
		{schemapb.DataType_Timestamptz, &schemapb.ValueField{Data: &schemapb.ValueField_TimestamptzData{TimestamptzData: 5}}, "[5 5]"},
		{schemapb.DataType_Float, vf(float32(1.5)), "[1.5 1.5]"},
		{schemapb.DataType_Double, vf(2.25), "[2.25 2.25]"},
		{schemapb.DataType_VarChar, vf("x"), `["x" "x"]`},
		{schemapb.DataType_JSON, vf(`{"a":1}`), `["{\"a\":1}" "{\"a\":1}"]`},
		{schemapb.DataType_JSON, vf([]byte(`[]`)), `["[]" "[]"]`},
		{schemapb.DataType_Int64, vf(int32(1)), "does not fit type Int64"},
		{schemapb.DataType_Timestamptz, vf(int64(1)), "does not fit type Timestamptz"},
		{schemapb.DataType_VarChar, vf([]byte("x")), "does not fit type VarChar"},
		{schemapb.DataType_Double, nil, "[(null) (null)]"},
	}
	for _, tc := range cases {
		f := &schemapb.FieldSchema{FieldID: 100, DataType: tc.typ, DefaultValue: tc.dv}
		a, err := buildFill(f, 2)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = a.String()
			a.Release()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v default %v: got %s, want %s", tc.typ, tc.dv, got, tc.want)
		}
		if tc.dv == nil {
			if err := canFill(f); err == nil {
				t.Errorf("a non-nullable field without default can be filled")
			}
		}
	}
}
