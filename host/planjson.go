package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/encoding/protojson"
)

// DecodePlanJSON decodes a protojson CompactionPlan. Fields this build's
// protobuf does not know (a newer Milvus's additions) are ignored, except
// a manifest path: Milvus marks storage-v3 ("loon" manifest) segments with
// one, and reading such a segment without it would misread its data, so a
// non-empty manifest path anywhere in the plan is an error wrapping
// ErrInvalidPlan.
func DecodePlanJSON(b []byte) (*datapb.CompactionPlan, error) {
	plan := new(datapb.CompactionPlan)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, plan); err != nil {
		return nil, err
	}
	if where, err := findManifestPath(b); err != nil {
		return nil, err
	} else if where != "" {
		return nil, fmt.Errorf("%w: plan %d: %s is set: storage-v3 manifest segments are not supported (this host reads storage v1 and v2)",
			ErrInvalidPlan, plan.GetPlanID(), where)
	}
	return plan, nil
}

// findManifestPath returns the JSON path of the first object member named
// manifest_path or manifestPath whose value is not empty, null or zero.
func findManifestPath(b []byte) (string, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var walk func(path string) (string, error)
	walk = func(path string) (string, error) {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return "", err
				}
				key, _ := kt.(string)
				if key == "manifest_path" || key == "manifestPath" {
					var v any
					if err := dec.Decode(&v); err != nil {
						return "", err
					}
					if v != nil && v != "" && v != json.Number("0") {
						return path + "." + key, nil
					}
					continue
				}
				if found, err := walk(path + "." + key); found != "" || err != nil {
					return found, err
				}
			}
			_, err = dec.Token() // '}'
			return "", err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if found, err := walk(fmt.Sprintf("%s[%d]", path, i)); found != "" || err != nil {
					return found, err
				}
			}
			_, err = dec.Token() // ']'
			return "", err
		}
		return "", nil
	}
	found, err := walk("plan")
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return found, err
}
