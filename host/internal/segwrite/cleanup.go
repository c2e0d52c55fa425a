package segwrite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compacthost/compacthost/storage/objstore"
)

// Backoff between the delete attempts of a cleanup: it starts at
// cleanupFirstWait and doubles up to cleanupMaxWait, until the cleanup's
// context ends.
const (
	cleanupFirstWait = 50 * time.Millisecond
	cleanupMaxWait   = 3 * time.Second
)

// LeftError reports the objects a failed task leaves in the store for the
// operator's sweep: those it created but could not delete before the
// cleanup's context ended, and those whose Create had an unknown outcome
// (never deleted: they may be another writer's).
type LeftError struct {
	Store   string
	Keys    []string // sorted
	Unsure  int      // how many of Keys had an unknown Create outcome
	LastErr error    // the last delete error, if any delete failed
}

func (e *LeftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d objects left under %q in %s for the operator's sweep", len(e.Keys), e.Prefix(), e.Store)
	if n := len(e.Keys) - e.Unsure; n > 0 {
		fmt.Fprintf(&b, " (%d not deleted: %v)", n, e.LastErr)
	}
	if e.Unsure > 0 {
		fmt.Fprintf(&b, " (%d whose creation had an unknown outcome)", e.Unsure)
	}
	return b.String()
}

func (e *LeftError) Unwrap() error { return e.LastErr }

// Prefix is the longest common prefix of Keys cut after a "/": the
// directory to sweep.
func (e *LeftError) Prefix() string {
	if len(e.Keys) == 0 {
		return ""
	}
	p := e.Keys[0]
	for _, k := range e.Keys[1:] {
		n := 0
		for n < len(p) && n < len(k) && p[n] == k[n] {
			n++
		}
		p = p[:n]
	}
	return p[:strings.LastIndexByte(p, '/')+1]
}

// Created collects the keys of the objects a task created, so that a
// failed task deletes exactly those. Its methods must not be called
// concurrently.
type Created struct {
	Keys   []string // Create succeeded: the task's to delete
	Unsure []string // Create had an unknown outcome: reported, never deleted
}

// Record notes the outcome err of a Create of key. A key whose Create
// failed otherwise is not recorded: the object there, if any, belongs to
// someone else.
func (c *Created) Record(key string, err error) {
	switch {
	case err == nil:
		c.Keys = append(c.Keys, key)
	case errors.Is(err, objstore.ErrUnknownOutcome):
		c.Unsure = append(c.Unsure, key)
	}
}

// Delete deletes the objects of c.Keys, at most par at a time, retrying
// each failed delete with backoff until ctx ends, so a short outage of the
// store is waited out. It returns nil when every one is gone and c.Unsure
// is empty, else a *LeftError naming what remains.
func (c *Created) Delete(ctx context.Context, store objstore.Store, par int) error {
	errs := make([]error, len(c.Keys))
	parallel(len(c.Keys), par, func(i int) error {
		errs[i] = deleteRetrying(ctx, store, c.Keys[i])
		return nil
	})
	left := &LeftError{Store: store.String(), Unsure: len(c.Unsure), Keys: slices.Clone(c.Unsure)}
	for i, err := range errs {
		if err != nil {
			left.Keys = append(left.Keys, c.Keys[i])
			left.LastErr = err
		}
	}
	if len(left.Keys) == 0 {
		return nil
	}
	slices.Sort(left.Keys)
	return left
}

func deleteRetrying(ctx context.Context, store objstore.Store, key string) error {
	wait := cleanupFirstWait
	for {
		err := store.Delete(ctx, key)
		if err == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, cleanupMaxWait)
	}
}
