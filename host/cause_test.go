package host

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/compacthost/compacthost/mempool"
)

func TestCauseKind(t *testing.T) {
	cases := []struct {
		err    error
		want   string
		plugin bool
	}{
		{nil, "", false},
		{&TaskError{Kind: ErrTrap}, "trap", true},
		{fmt.Errorf("plan 1: %w", &TaskError{Kind: ErrDeadline}), "deadline", true},
		{&AdmissionError{Rule: "import-allowlist"}, "refused", true},
		{fmt.Errorf("plan 1: %w", ErrNoPlugin), "no_plugin", true},
		{fmt.Errorf("lease: %w", mempool.ErrTooLarge), "pool_too_small", false},
		{&CompactError{PlanID: 1, Stage: "validate", Err: fmt.Errorf("plan 1 has no segments: %w", ErrInvalidPlan)}, "invalid_plan", false},
		{&CompactError{PlanID: 1, Stage: "strategy", Err: &TaskError{Kind: ErrPanic}}, "panic", true},
		{context.DeadlineExceeded, "timeout", false},
		{timedOutError{&CompactError{PlanID: 1, Stage: "read", Err: &deadlineError{reason: "task 1: executor task timeout exceeded (1s)", err: context.DeadlineExceeded}}}, "timeout", false},
		{fmt.Errorf("%w: plan 1: %w", ErrShutdownCancelled, context.Canceled), "shutdown", false},
		{fmt.Errorf("%w: task 1: %w", ErrTaskCancelled, &TaskError{Kind: ErrDeadline}), "canceled", false},
		{ErrShutdownQueued, "shutdown", false},
		{fmt.Errorf("%w: task 1: plan 1: %w", ErrTaskCancelled, context.Canceled), "canceled", false},
		{fmt.Errorf("%w: plan 1: boom", errRunPanic), "internal", false},
		{errors.New("boom"), "error", false},
	}
	for _, c := range cases {
		if got := CauseKind(c.err); got != c.want {
			t.Errorf("CauseKind(%v) = %q, want %q", c.err, got, c.want)
		}
		if got := IsPluginFailure(c.err); got != c.plugin {
			t.Errorf("IsPluginFailure(%v) = %v", c.err, got)
		}
	}
}
