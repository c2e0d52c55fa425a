package server

import (
	"context"
	"errors"

	"github.com/compacthost/compacthost/host"
	"github.com/compacthost/compacthost/mempool"
	"github.com/compacthost/compacthost/storage/objstore"
)

// causes maps the host's and the pool's error kinds to metric label values,
// most specific first.
var causes = []struct {
	kind error
	name string
}{
	{host.ErrRefused, "refused"},
	{host.ErrTrap, "trap"},
	{host.ErrOutOfMemory, "out_of_memory"},
	{host.ErrGuestFailed, "guest_failed"},
	{host.ErrPanic, "panic"},
	{host.ErrDeadline, "deadline"},
	{host.ErrABIMisuse, "abi_misuse"},
	{host.ErrExit, "exit"},
	{host.ErrClosed, "closed"},
	{host.ErrNoPlugin, "no_plugin"},
	{host.ErrInvalidPlan, "invalid_plan"},
	{mempool.ErrTooLarge, "pool_too_small"},
	{errShutdownQueued, "shutdown"},
	{errShutdownCancelled, "shutdown"},
	{errCompactorPanic, "internal"},
	{context.DeadlineExceeded, "timeout"},
	{context.Canceled, "canceled"},
	{objstore.ErrNotExist, "not_found"},
}

// CauseKind names the kind of a task failure: one of refused, trap,
// out_of_memory, guest_failed, panic, deadline, abi_misuse, exit, closed,
// no_plugin (the plugin errors, see IsPluginFailure), invalid_plan (the
// plan breaks Milvus's rules), pool_too_small (the plan needs more memory
// than the pool has),
// shutdown, internal, timeout, canceled, not_found, or "error" for anything
// else (storage, bad plan data). It returns "" for nil.
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

// pluginCauses are the CauseKinds a plugin failure can have; the plugin
// failure counter starts them at zero.
var pluginCauses = []string{"refused", "trap", "out_of_memory", "guest_failed", "panic", "deadline", "abi_misuse", "exit", "closed", "no_plugin"}

// IsPluginFailure reports whether err is the strategy's fault or a plugin's
// absence: a failed instance (host.TaskError), an admission refusal, or no
// admitted plugin for the plan.
func IsPluginFailure(err error) bool {
	var te *host.TaskError
	return errors.As(err, &te) || errors.Is(err, host.ErrRefused) || errors.Is(err, host.ErrNoPlugin)
}
