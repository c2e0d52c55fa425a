package host

import (
	"context"
	"errors"

	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/objstore"
)

// causes maps the executor's, the host's and the pool's error kinds to
// cause names, most specific first. The executor's come first: when it
// stopped a run, whatever the run then failed with was the consequence.
var causes = []struct {
	kind error
	name string
}{
	{ErrShutdownQueued, "shutdown"},
	{ErrShutdownCancelled, "shutdown"},
	{ErrTaskCancelled, "canceled"},
	{ErrTaskTimeout, "timeout"},
	{ErrRefused, "refused"},
	{ErrTrap, "trap"},
	{ErrOutOfMemory, "out_of_memory"},
	{ErrGuestFailed, "guest_failed"},
	{ErrPanic, "panic"},
	{ErrDeadline, "deadline"},
	{ErrABIMisuse, "abi_misuse"},
	{ErrExit, "exit"},
	{ErrClosed, "closed"},
	{ErrNoPlugin, "no_plugin"},
	{ErrInvalidPlan, "invalid_plan"},
	{mempool.ErrTooLarge, "pool_too_small"},
	{errRunPanic, "internal"},
	{context.DeadlineExceeded, "timeout"},
	{context.Canceled, "canceled"},
	{objstore.ErrNotExist, "not_found"},
}

// CauseKind names the kind of a task failure: one of refused, trap,
// out_of_memory, guest_failed, panic, deadline, abi_misuse, exit, closed,
// no_plugin (the plugin errors, see IsPluginFailure), invalid_plan (the
// plan breaks Milvus's rules), pool_too_small (the plan needs more memory
// than the pool has), timeout (the Executor's task timeout, or a bare
// context deadline), shutdown (the Executor closed), canceled (Cancel or a
// bare context cancel), internal (the function running the task panicked),
// not_found, or "error" for anything else (storage, bad plan data). It
// returns "" for nil. Metrics use these names as label values.
func CauseKind(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range causes {
		if errors.Is(err, c.kind) {
			return c.name
		}
	}
	return "error"
}

// PluginFailureCauses returns the CauseKinds a plugin failure can have
// (see IsPluginFailure), for metrics that start every label at zero.
func PluginFailureCauses() []string {
	return []string{"refused", "trap", "out_of_memory", "guest_failed", "panic", "deadline", "abi_misuse", "exit", "closed", "no_plugin"}
}

// IsPluginFailure reports whether err is the strategy's fault or a plugin's
// absence: a failed instance (TaskError), an admission refusal, or no
// admitted plugin for the plan; not a run an Executor cancelled.
func IsPluginFailure(err error) bool {
	if errors.Is(err, ErrTaskCancelled) || errors.Is(err, ErrShutdownCancelled) {
		return false
	}
	var te *TaskError
	return errors.As(err, &te) || errors.Is(err, ErrRefused) || errors.Is(err, ErrNoPlugin)
}
