package host

import (
	"errors"
	"fmt"
	"sync"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// ErrOutputRangesInUse is wrapped by the error of a task refused because
// its pre-allocated output segment or log IDs overlap those of a task
// still running (or, in a server, queued): both would write the same
// output keys.
var ErrOutputRangesInUse = errors.New("output ID ranges in use by another task")

// OutputRanges holds the pre-allocated output ID ranges of tasks in
// flight. Every Host keeps one for its running tasks; a server that
// queues plans keeps its own for queued and running ones. It is safe for
// concurrent use; the zero value is ready.
type OutputRanges struct {
	mu   sync.Mutex
	held map[*heldRanges]struct{}
}

// heldRanges are one task's ranges: the segment IDs of a mix task
// (L0 writes under existing segments) and the log IDs.
type heldRanges struct {
	plan       int64
	segs, logs idRange
}

type idRange struct{ begin, end int64 }

func (r idRange) overlaps(o idRange) bool {
	return r.begin < r.end && o.begin < o.end && r.begin < o.end && o.begin < r.end
}

// Reserve records plan's output ranges, or fails with an error wrapping
// ErrOutputRangesInUse that names the plan holding an overlapping range.
// The caller calls release exactly once, when the task ends. Reserve
// expects a plan that passed ValidatePlan.
func (o *OutputRanges) Reserve(plan *datapb.CompactionPlan) (release func(), err error) {
	h := &heldRanges{plan: plan.GetPlanID(),
		logs: idRange{plan.GetPreAllocatedLogIDs().GetBegin(), plan.GetPreAllocatedLogIDs().GetEnd()}}
	if plan.GetType() != datapb.CompactionType_Level0DeleteCompaction {
		h.segs = idRange{plan.GetPreAllocatedSegmentIDs().GetBegin(), plan.GetPreAllocatedSegmentIDs().GetEnd()}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for other := range o.held {
		name, mine, theirs := "", h.segs, other.segs
		switch {
		case mine.overlaps(theirs):
			name = "pre_allocated_segmentIDs"
		case h.logs.overlaps(other.logs):
			name, mine, theirs = "pre_allocated_logIDs", h.logs, other.logs
		default:
			continue
		}
		return nil, fmt.Errorf("%w: plan %d: %s [%d, %d) overlaps plan %d's [%d, %d)",
			ErrOutputRangesInUse, h.plan, name, mine.begin, mine.end, other.plan, theirs.begin, theirs.end)
	}
	if o.held == nil {
		o.held = map[*heldRanges]struct{}{}
	}
	o.held[h] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			delete(o.held, h)
			o.mu.Unlock()
		})
	}, nil
}
