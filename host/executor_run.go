package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"
)

// work runs queued tasks until Close has emptied the queue.
func (e *Executor) work() {
	defer e.workers.Done()
	for {
		e.mu.Lock()
		for e.queue.Len() == 0 && !e.closing {
			e.wake.Wait()
		}
		if e.queue.Len() == 0 {
			e.mu.Unlock()
			return
		}
		t := e.queue.Remove(e.queue.Front()).(*execTask)
		t.elem = nil
		ctx, cancel := context.WithCancelCause(t.base)
		t.cancel = cancel
		t.info.State, t.info.Started = TaskRunning, time.Now()
		e.stats.Queued--
		e.stats.Running++
		e.running[t] = struct{}{}
		e.mu.Unlock()
		e.runTask(ctx, t)
	}
}

// runTask runs one started task under the task timeout and records the
// outcome.
func (e *Executor) runTask(ctx context.Context, t *execTask) {
	e.log.Info("task started", "task", t.info.ID, "plan", t.info.PlanID, "type", t.info.Type.String())
	rctx, stopTimer := ctx, context.CancelFunc(func() {})
	if d := e.cfg.TaskTimeout; d > 0 {
		rctx, stopTimer = context.WithTimeoutCause(ctx, d, fmt.Errorf("task %s: %w (%s)", t.info.ID, ErrTaskTimeout, d))
	}
	res, err := e.call(rctx, t)
	timedOut := err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), ErrTaskTimeout)
	stopTimer()
	t.cancel(nil)

	e.mu.Lock()
	switch {
	case err == nil:
	case t.stop != nil:
		err = fmt.Errorf("%w: %w", t.stop, err)
	case timedOut:
		err = timedOutError{err}
	}
	e.finishLocked(t, res, err)
	info := t.info
	e.mu.Unlock()
	d := info.Finished.Sub(info.Started)
	switch info.State {
	case TaskCompleted:
		e.log.Info("task succeeded", "task", info.ID, "plan", info.PlanID, "segments", len(res.GetSegments()), "duration", d)
	case TaskCancelled:
		e.log.Info("task cancelled", "task", info.ID, "plan", info.PlanID, "duration", d, "error", err)
	default:
		e.log.Error("task failed", "task", info.ID, "plan", info.PlanID, "cause", info.Cause, "duration", d, "error", err)
	}
}

// timedOutError marks a run's error as ended by the executor's task
// timeout (it matches ErrTaskTimeout) and keeps its text: Host.Compact's
// error already says that the executor's timeout ended the task.
type timedOutError struct{ error }

func (e timedOutError) Unwrap() error        { return e.error }
func (e timedOutError) Is(target error) bool { return target == ErrTaskTimeout }

// call runs the plan, turning a panic or a missing or foreign result into
// a task failure.
func (e *Executor) call(ctx context.Context, t *execTask) (res *datapb.CompactionPlanResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w: plan %d: %v", errRunPanic, t.info.PlanID, p)
		}
	}()
	res, err = e.run(ctx, t.plan, taskReporter{e, t}, t.opts...)
	switch {
	case err != nil:
		return nil, err
	case res == nil:
		return nil, fmt.Errorf("plan %d: compactor returned no result and no error", t.info.PlanID)
	case res.GetPlanID() != t.info.PlanID:
		return nil, fmt.Errorf("plan %d: compactor returned the result of plan %d", t.info.PlanID, res.GetPlanID())
	}
	return res, nil
}

// finishLocked records a task's outcome, frees what it held and applies
// the history bound. Called with e.mu held.
func (e *Executor) finishLocked(t *execTask, res *datapb.CompactionPlanResult, err error) {
	if t.info.State == TaskRunning {
		e.stats.Running--
		delete(e.running, t)
	} else {
		e.stats.Queued--
	}
	t.info.Finished = time.Now()
	t.plan, t.opts, t.base = nil, nil, nil
	t.release()
	if e.active[t.info.PlanID] == t {
		delete(e.active, t.info.PlanID)
	}
	e.slotsUse -= t.info.SlotUsage
	if err == nil {
		t.info.State, t.info.Result = TaskCompleted, res
	} else {
		t.info.State = TaskFailed
		if errors.Is(err, ErrTaskCancelled) {
			t.info.State = TaskCancelled
		}
		t.info.Err, t.info.Cause = err, CauseKind(err)
		t.info.Result = &datapb.CompactionPlanResult{PlanID: t.info.PlanID, State: datapb.CompactionTaskState_failed,
			Type: t.info.Type, Channel: t.info.Channel}
		e.stats.Failures[t.info.Cause]++
		if IsPluginFailure(err) {
			e.stats.PluginFailures[t.info.Cause]++
		}
	}
	e.stats.Finished[t.info.State]++
	close(t.done)
	if t.dropped {
		return
	}
	e.history = append(e.history, t)
	if over := len(e.history) - e.cfg.History; over > 0 {
		for _, old := range e.history[:over] {
			if e.tasks[old.info.ID] == old {
				delete(e.tasks, old.info.ID)
			}
		}
		e.history = append(e.history[:0], e.history[over:]...)
	}
}

// taskReporter is the TaskReporter of one task.
type taskReporter struct {
	e *Executor
	t *execTask
}

func (r taskReporter) Plugin(id PluginID) {
	r.e.mu.Lock()
	r.t.info.Plugin = id
	r.e.mu.Unlock()
}

// Progress adds what the task did since its last report to the totals.
func (r taskReporter) Progress(p Progress) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	t, tot := r.t, &r.e.stats.Progress
	if t.info.State != TaskRunning {
		return // a report racing with the end of the task
	}
	add := func(total *int64, now, last int64) {
		if now > last {
			*total += now - last
		}
	}
	last := t.info.Progress
	add(&tot.DeletesRead, p.DeletesRead, last.DeletesRead)
	add(&tot.RowsRead, p.RowsRead, last.RowsRead)
	add(&tot.BytesRead, p.BytesRead, last.BytesRead)
	add(&tot.RowsWritten, p.RowsWritten, last.RowsWritten)
	add(&tot.BytesWritten, p.BytesWritten, last.BytesWritten)
	t.info.Progress = p
}

// Close stops accepting plans and fails the queued ones
// (ErrShutdownQueued), then waits for the running tasks until ctx ends;
// then it cancels them (they fail with ErrShutdownCancelled, after their
// cleanup) and waits up to CancelGrace more. It returns an error only if
// runs are still going after that. Calling it again waits again. Known
// tasks stay readable with Get.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		for el := e.queue.Front(); el != nil; el = e.queue.Front() {
			t := e.queue.Remove(el).(*execTask)
			e.finishLocked(t, nil, ErrShutdownQueued)
			e.log.Warn("task failed", "task", t.info.ID, "plan", t.info.PlanID, "cause", t.info.Cause, "error", t.info.Err)
		}
		e.wake.Broadcast()
	}
	running := len(e.running)
	e.mu.Unlock()
	e.log.Info("shutting down: no new plans accepted", "running", running)
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
		e.log.Info("shutdown complete: every task finished")
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	for t := range e.running {
		e.stopLocked(t, ErrShutdownCancelled)
	}
	running = len(e.running)
	e.mu.Unlock()
	e.log.Warn("shutdown timeout: cancelling running tasks", "running", running)
	select {
	case <-done:
		e.log.Info("shutdown complete after cancelling running tasks")
		return nil
	case <-time.After(e.cfg.CancelGrace):
		e.mu.Lock()
		running = len(e.running)
		e.mu.Unlock()
		return fmt.Errorf("host: executor: %d task(s) still running %s after being cancelled", running, e.cfg.CancelGrace)
	}
}
