package server

import (
	"bytes"
	"errors"
	"fmt"
	"mime"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	"google.golang.org/protobuf/proto"

	"github.com/compacthost/compacthost/host"
)

// ContentTypeProtobuf marks a binary protobuf request body.
const ContentTypeProtobuf = "application/x-protobuf"

// DecodePlan is the default plan decoder: binary protobuf when contentType
// is application/x-protobuf, protojson otherwise. It checks only what the
// server needs to queue the plan (a plan ID and at least one segment); the
// compactor validates the rest. Unknown JSON fields (from newer Milvus
// versions) are ignored, except a manifest path (host.DecodePlanJSON).
func DecodePlan(body []byte, contentType string) (*datapb.CompactionPlan, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("empty request body: want a CompactionPlan as protojson or binary protobuf")
	}
	plan := &datapb.CompactionPlan{}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == ContentTypeProtobuf {
		if err := proto.Unmarshal(body, plan); err != nil {
			return nil, fmt.Errorf("plan is not a binary protobuf CompactionPlan: %w", err)
		}
	} else if p, err := host.DecodePlanJSON(body); errors.Is(err, host.ErrInvalidPlan) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("plan is not a protojson CompactionPlan: %w", err)
	} else {
		plan = p
	}
	if plan.GetPlanID() == 0 {
		return nil, fmt.Errorf("plan has no planID")
	}
	if len(plan.GetSegmentBinlogs()) == 0 {
		return nil, fmt.Errorf("plan %d has no segmentBinlogs", plan.GetPlanID())
	}
	return plan, nil
}
