package host

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/sys"
)

// ErrRolledBack is matched (errors.Is) by the Err of a PluginStatus whose
// version was rolled back after failing its first tasks.
var ErrRolledBack = errors.New("plugin rolled back")

// RollbackError is why a rolled-back version no longer serves.
type RollbackError struct {
	Plugin   PluginID
	Failures int    // consecutive strategy failures that triggered it
	Tasks    int    // tasks the version had run by then
	Last     string // first line of the last failure
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("plugin %s rolled back after %d consecutive strategy failures in its first %d tasks; last: %s",
		e.Plugin, e.Failures, e.Tasks, e.Last)
}

// Is reports true for ErrRolledBack.
func (e *RollbackError) Is(target error) bool { return target == ErrRolledBack }

// trial follows a version through its first tasks.
type trial struct {
	tasks  int  // tasks that said something about the plugin (see Report)
	streak int  // consecutive strategy failures among them
	warned bool // logged that there is no version to fall back to
}

// StrategyFault reports whether a task's failure is the strategy's own
// doing: its instance trapped, panicked, ran out of its memory grant,
// broke the ABI, reported an error or exited, or was running guest code
// when the task deadline passed. Failures of the plan, the store, the
// memory pool or the host, a deadline that passed while the host was
// reading or writing, and cancellations are not; a *CompactError counts
// only from the "strategy" stage.
func StrategyFault(err error) bool {
	if err == nil {
		return false
	}
	var ce *CompactError
	if errors.As(err, &ce) && ce.Stage != "strategy" {
		return false
	}
	var te *TaskError
	if !errors.As(err, &te) {
		return errors.Is(err, ErrABIMisuse) // a host check of the strategy's output
	}
	switch te.Kind {
	case ErrTrap, ErrOutOfMemory, ErrGuestFailed, ErrPanic, ErrABIMisuse, ErrExit:
		return true
	case ErrDeadline:
		// wazero stopped guest code at the deadline; a deadline noticed
		// before a call passed in the host, and a cancel is no verdict.
		var exit *sys.ExitError
		return errors.As(te.Err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded
	}
	return false
}

// Report tells the registry how a task run by the plugin id ended (err nil:
// it succeeded), for rollback. A Host whose Options.Plugins is this
// registry reports every task it runs on a plugin acquired here; call
// Report only for tasks run otherwise. Successes and StrategyFault
// failures count against the version's first RollbackWindow tasks; other
// failures say nothing about the binary and are ignored. Reports for a
// version the registry no longer serves are ignored.
func (r *Registry) Report(id PluginID, err error) {
	if r.cfg.RollbackFailures < 0 || (err != nil && !StrategyFault(err)) {
		return
	}
	r.mu.Lock()
	var e *regEntry
	for _, c := range r.entries {
		if c.plugin != nil && c.plugin.id == id {
			e = c
			break
		}
	}
	if e == nil || e.trial.tasks >= r.cfg.RollbackWindow {
		r.mu.Unlock()
		return
	}
	e.trial.tasks++
	if err == nil {
		e.trial.streak = 0
		r.mu.Unlock()
		return
	}
	e.trial.streak++
	if e.trial.streak < r.cfg.RollbackFailures {
		r.mu.Unlock()
		return
	}
	last, _, _ := strings.Cut(err.Error(), "\n")
	var fallback *regEntry
	for _, c := range r.entries {
		if c != e && c.plugin != nil && c.id.Name == id.Name &&
			(fallback == nil || compareVersions(c.plugin.id.Version, fallback.plugin.id.Version) > 0) {
			fallback = c
		}
	}
	if fallback == nil {
		warn := !e.trial.warned
		e.trial.warned = true
		r.mu.Unlock()
		if warn {
			r.log.Warn("plugin keeps failing but no other version of its name is admitted to roll back to; it keeps serving",
				"plugin", id.String(), "file", e.file, "failures", e.trial.streak, "tasks", e.trial.tasks, "last_error", last)
		}
		return
	}
	p, rb := e.plugin, &RollbackError{Plugin: id, Failures: e.trial.streak, Tasks: e.trial.tasks, Last: last}
	e.plugin, e.err = nil, rb
	r.rollbacks.Add(1)
	r.mu.Unlock()
	p.Release() // running tasks keep their own references
	r.log.Warn("plugin rolled back", "plugin", id.String(), "file", e.file, "serving", fallback.id.String(),
		"failures", rb.Failures, "tasks", rb.Tasks, "last_error", last)
}

// Rollbacks counts the versions rolled back since the registry started.
func (r *Registry) Rollbacks() int64 { return r.rollbacks.Load() }

// report is Report for a Host's task; a task cancelled by its caller says
// nothing about the plugin.
func (r *Registry) report(ctx context.Context, id PluginID, err error) {
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	r.Report(id, err)
}
