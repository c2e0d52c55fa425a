package mempool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Clock is the time source of a [Controller]; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives a value when the clock reaches t,
	// at once if it already has. A clock may fire early; the controller
	// re-reads Now and re-applies, so early wake-ups are harmless.
	At(t time.Time) <-chan time.Time
}

// SystemClock is the real clock. Its At wakes at least once a minute so that
// wall-clock jumps (NTP steps, suspend, DST) are noticed within a minute.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) At(t time.Time) <-chan time.Time {
	return time.After(min(time.Until(t), time.Minute))
}

// Change reports one resize made by a [Controller], or a failed attempt.
type Change struct {
	At       time.Time // the clock's time when the policy was evaluated
	Old, New int64     // pool total before and after
	Err      error     // non-nil if the resize or the memory reading failed
	// Memory is the reading a LoadPolicy used, nil for other policies and
	// when the reading failed.
	Memory *Memory
}

// Controller keeps a pool's total equal to a policy's share of a node budget:
// it calls Pool.Grow or Pool.Shrink whenever the policy's fraction changes.
// With a [LoadPolicy] it also reads Memory every Interval and caps the total
// at the policy's share of the available memory.
type Controller struct {
	Pool   *Pool
	Policy Policy
	Budget int64 // the node's memory budget in bytes; the pool gets a fraction of it
	Clock  Clock // nil means SystemClock
	// Memory is read by a LoadPolicy; nil means SystemMemory("").
	Memory MemorySource
	// OnChange, if set, is called (from Run's goroutine) after every resize
	// and every failed one, for logs and metrics. It must not call Apply.
	OnChange func(Change)

	mu     sync.Mutex // serializes Apply; guards the load cap below
	cap    int64      // the load cap in force
	capSet bool       // cap was computed from a reading
	capAt  time.Time  // when cap last changed
}

func (c *Controller) clock() Clock {
	if c.Clock == nil {
		return SystemClock()
	}
	return c.Clock
}

func (c *Controller) memory() MemorySource {
	if c.Memory == nil {
		return SystemMemory("")
	}
	return c.Memory
}

// Apply sets the pool's total for time now and returns it. It reports the
// change to OnChange when the total changed or the resize failed. With a
// LoadPolicy it reads Memory first; if that fails, the load cap keeps its
// last value (before the first good reading the total is not raised above
// the pool's current total), the time part still applies, and the error is
// returned and reported.
func (c *Controller) Apply(now time.Time) (int64, error) {
	if err := c.validate(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.Pool.Total()
	total := TotalAt(c.Policy, c.Budget, now)
	var reading *Memory
	var readErr error
	if lp, ok := c.Policy.(*LoadPolicy); ok {
		var capped int64
		capped, reading, readErr = c.loadCap(lp, now, old)
		total = min(total, capped)
	}
	if total == old && readErr == nil {
		return total, nil
	}
	var err error
	if total != old {
		err = c.Pool.SetTotal(total)
	}
	err = errors.Join(readErr, err)
	if err != nil {
		err = fmt.Errorf("mempool: controller: policy %s at %s: %w", c.Policy, now.Format(time.RFC3339), err)
	}
	if c.OnChange != nil {
		c.OnChange(Change{At: now, Old: old, New: c.Pool.Total(), Err: err, Memory: reading})
	}
	return total, err
}

// loadCap reads the memory source and returns the load cap in force at now,
// updating it when the reading moves it past the hysteresis band and the
// last change is at least an Interval old. It returns the reading too.
// poolTotal stands in for the cap
// while no reading has succeeded.
func (c *Controller) loadCap(lp *LoadPolicy, now time.Time, poolTotal int64) (int64, *Memory, error) {
	m, err := c.memory().Memory()
	if err != nil {
		if !c.capSet {
			return poolTotal, nil, err
		}
		return c.cap, nil, err
	}
	next := lp.Cap(m, c.Pool.Stats().Used)
	switch {
	case !c.capSet:
		c.cap, c.capSet, c.capAt = next, true, now
	case next != c.cap && lp.moves(c.cap, next) && now.Sub(c.capAt) >= lp.Interval:
		c.cap, c.capAt = next, now
	}
	return c.cap, &m, nil
}

func (c *Controller) validate() error {
	if c.Pool == nil || c.Policy == nil {
		return fmt.Errorf("mempool: controller: pool and policy are required")
	}
	if c.Budget <= 0 {
		return fmt.Errorf("mempool: controller: budget %d bytes must be positive: %w", c.Budget, ErrInvalidSize)
	}
	if lp, ok := c.Policy.(*LoadPolicy); ok {
		if err := lp.check(); err != nil { // a literal LoadPolicy{} would poll without pause
			return fmt.Errorf("mempool: controller: load policy: %w", err)
		}
	}
	return nil
}

// Run applies the policy now and at every change until ctx ends, and then
// returns ctx.Err(). A load policy is also applied every Interval. A failed
// resize or memory reading is reported to OnChange and retried at the next
// wake-up; it does not stop Run.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.validate(); err != nil {
		return err
	}
	clk := c.clock()
	for {
		now := clk.Now()
		_, _ = c.Apply(now) // failures go to OnChange; retried at the next wake-up
		next := c.Policy.NextChange(now)
		if lp, ok := c.Policy.(*LoadPolicy); ok {
			if tick := now.Add(lp.Interval); next.IsZero() || tick.Before(next) {
				next = tick
			}
		}
		if next.IsZero() {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.At(next):
		}
	}
}
