package server

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodePlan: any request body either decodes to a plan with an ID and
// segments that survives a binary round trip, or is refused with an error;
// it never panics.
func FuzzDecodePlan(f *testing.F) {
	js, _ := protojson.Marshal(testPlan(3))
	bin, _ := proto.Marshal(testPlan(4))
	f.Add(js, false)
	f.Add(bin, true)
	f.Add([]byte(`{"planID": "1", "segmentBinlogs": [{"segmentID": "2", "fieldBinlogs": [{"fieldID": "100"}]}], "unknownField": 1}`), false)
	f.Add([]byte(`{"planID": 1e3}`), false)
	f.Add([]byte{0x08, 0x01, 0x12, 0x00}, true)
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		ctype := "application/json"
		if binary {
			ctype = ContentTypeProtobuf + "; charset=binary"
		}
		plan, err := DecodePlan(body, ctype)
		if err != nil {
			if plan != nil {
				t.Fatal("a plan and an error")
			}
			return
		}
		if plan.GetPlanID() == 0 || len(plan.GetSegmentBinlogs()) == 0 {
			t.Fatalf("accepted a plan without ID or segments: %v", plan)
		}
		b, err := proto.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodePlan(b, ContentTypeProtobuf)
		if err != nil || !proto.Equal(plan, again) {
			t.Fatalf("binary round trip: %v", err)
		}
	})
}
