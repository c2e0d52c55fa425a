package mempool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMemory is a MemorySource the test sets.
// Its process is resident in self bytes (100 unless set).
type fakeMemory struct {
	mu    sync.Mutex
	avail int64
	self  int64
	err   error
}

func (f *fakeMemory) Memory() (Memory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Memory{}, f.err
	}
	self := f.self
	if self == 0 {
		self = 100
	}
	return Memory{Available: f.avail, Limit: 1 << 40, Self: self, From: "fake"}, nil
}

func (f *fakeMemory) set(avail int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.avail, f.err = avail, err
}

func (f *fakeMemory) setSelf(self int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self = self
}

func TestParseLoadPolicy(t *testing.T) {
	cases := map[string]string{
		"load:0.5":                            "load:0.5",
		" load:50% ":                          "load:0.5",
		"load:0.5,hysteresis=10%,interval=5s": "load:0.5",
		"load:0.5,max=8GiB,min=1GiB,interval=1m30s,hysteresis=0": "load:0.5,hysteresis=0,interval=1m30s,min=1GiB,max=8GiB",
		"static:1;load:0.25":                                                 "load:0.25",
		"static:0.5;load:0.25,min=512MiB":                                    "static:0.5;load:0.25,min=512MiB",
		"window:08:00-22:00=0.2,default=0.8;load:0.5":                        "window:08:00-22:00=0.2,default=0.8;load:0.5",
		"window:22:00-06:00=80%,default=20%,tz=UTC ; load:0.5,hysteresis=5%": "window:22:00-06:00=0.8,default=0.2,tz=UTC;load:0.5,hysteresis=0.05",
	}
	checkCanonical(t, cases)
	for in := range cases {
		if p := mustParse(t, in); !isLoad(p) {
			t.Errorf("ParsePolicy(%q) is a %T", in, p)
		}
	}
	lp := mustParse(t, "window:08:00-22:00=0.2,default=0.8;load:0.5,min=1GiB,max=8GiB").(*LoadPolicy)
	if lp.Frac != 0.5 || lp.Hysteresis != DefaultLoadHysteresis || lp.Interval != DefaultLoadInterval ||
		lp.Min != 1<<30 || lp.Max != 8<<30 {
		t.Errorf("parsed %+v", lp)
	}
	noon := time.Date(2026, 7, 1, 12, 0, 0, 0, time.Local)
	if f := lp.Fraction(noon); f != 0.2 {
		t.Errorf("combined Fraction at noon = %v, want the window's 0.2", f)
	}
	if next := lp.NextChange(noon); next.Hour() != 22 {
		t.Errorf("combined NextChange = %v, want the window's 22:00 edge", next)
	}
}

func isLoad(p Policy) bool { _, ok := p.(*LoadPolicy); return ok }

func TestParseLoadPolicyErrors(t *testing.T) {
	cases := map[string]string{
		"load:":                                       `fraction "" is not a number`,
		"load:1.5":                                    "fraction 1.5 must be in (0, 1]",
		"load:hysteresis=5%":                          "load: missing the FRACTION first",
		"load:0.5,0.6":                                `load item 2 "0.6": want hysteresis=, interval=, min= or max=`,
		"load:0.5,hysteresis=1":                       "hysteresis 1 must be in [0, 1)",
		"load:0.5,hysteresis=-5%":                     "hysteresis -0.05 must be in [0, 1)",
		"load:0.5,hysteresis=x":                       `fraction "x" is not a number`,
		"load:0.5,interval=0s":                        "interval 0s must be positive",
		"load:0.5,interval=5":                         `time: missing unit in duration "5"`,
		"load:0.5,min=lots":                           `size "lots": want a number and a unit`,
		"load:0.5,min=2GiB,max=1GiB":                  "min 2GiB is above max 1GiB",
		"load:0.5,max=1GiB,max=2GiB":                  "max given twice",
		"load:0.5,ceiling=1GiB":                       `unknown setting "ceiling"`,
		"load:0.5;static:0.5":                         "a load policy must come last",
		"static:0.5;window:08:00-09:00=0.1,default=1": "only a load policy may follow ';'",
		"static:0.5;load:0.5;load:0.4":                "more than two parts",
		"static:0.5;":                                 "missing kind",
		"static:2;load:0.5":                           "fraction 2 must be in (0, 1]",
	}
	for in, want := range cases {
		_, err := ParsePolicy(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicy(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestLoadPolicyCap(t *testing.T) {
	p := &LoadPolicy{Base: StaticPolicy{Frac: 1}, Frac: 0.5, Interval: time.Second, Min: 100, Max: 600}
	for _, c := range []struct{ avail, self, leased, want int64 }{
		{1000, 50, 0, 500},
		{800, 250, 200, 500}, // leases whose pages are resident count as available
		{1000, 50, 200, 525}, // untouched leases are still in Available: only the resident 50 counts
		{100, 50, 0, 100},    // floor
		{0, 0, 0, 100},       // floor
		{-5, -5, -5, 100},    // negative readings count as none
		{5000, 0, 0, 600},    // ceiling
		{1<<62 + 1<<62 - 1, 1 << 62, 1 << 62, 600},
	} {
		if got := p.Cap(Memory{Available: c.avail, Self: c.self}, c.leased); got != c.want {
			t.Errorf("Cap(available %d, self %d, leased %d) = %d, want %d", c.avail, c.self, c.leased, got, c.want)
		}
	}
}

// loadController returns a controller over a pool of start bytes with the
// given policy, a fake source and the changes it reports.
func loadController(t *testing.T, policy string, start int64, mem *fakeMemory) (*Controller, *[]Change) {
	t.Helper()
	var changes []Change
	return &Controller{
		Pool: newPool(t, start), Policy: mustParse(t, policy), Budget: 1000, Memory: mem,
		OnChange: func(c Change) { changes = append(changes, c) },
	}, &changes
}

func apply(t *testing.T, c *Controller, at time.Time, want int64) {
	t.Helper()
	got, err := c.Apply(at)
	if err != nil {
		t.Fatalf("Apply at %s: %v", at.Format(time.TimeOnly), err)
	}
	if got != want || c.Pool.Total() != want {
		t.Fatalf("Apply at %s = %d (pool %d), want %d", at.Format(time.TimeOnly), got, c.Pool.Total(), want)
	}
}

func TestControllerLoadStepChanges(t *testing.T) {
	mem := &fakeMemory{avail: 1000}
	c, changes := loadController(t, "load:0.5", 1000, mem)
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	apply(t, c, at(0), 500) // half of the 1000 available
	// A task leases 400: until it touches the pages, the machine's available
	// memory is unchanged and so is the cap.
	lease := mustTry(t, c.Pool, "plan-1", 400)
	apply(t, c, at(3), 500)
	// Once it has touched them the machine has 400 less, but the lease is
	// ours, so the pool does not chase its own use.
	mem.set(600, nil)
	mem.setSelf(500)
	apply(t, c, at(5), 500)

	// Another process takes 500: available 100 + our 400 leased = 500, half
	// of it is 250. The shrink keeps the running lease; nothing new fits.
	mem.set(100, nil)
	apply(t, c, at(10), 250)
	if s := c.Pool.Stats(); s.Used != 400 || s.Total != 250 {
		t.Fatalf("after shrink: %+v", s)
	}
	if _, err := c.Pool.TryPreFetch("plan-2", 10); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("grant above the shrunk total: %v", err)
	}
	if _, err := c.Pool.TryPreFetch("plan-2", 300); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("request above the shrunk total: %v", err)
	}
	mustReturn(t, c.Pool, lease)

	// The other process exits; our lease is gone too: 1000 available again.
	mem.set(1000, nil)
	mem.setSelf(100)
	apply(t, c, at(15), 500)
	want := []Change{{At: at(0), Old: 1000, New: 500}, {At: at(10), Old: 500, New: 250}, {At: at(15), Old: 250, New: 500}}
	// Each change carries the reading that caused it.
	for i, avail := range []int64{1000, 100, 1000} {
		if m := (*changes)[i].Memory; m == nil || m.Available != avail || m.From != "fake" {
			t.Fatalf("change %d carries reading %+v, want %d available", i, m, avail)
		}
		(*changes)[i].Memory = nil
	}
	if fmt.Sprint(*changes) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", *changes, want)
	}
}

func TestControllerLoadHysteresisAndInterval(t *testing.T) {
	mem := &fakeMemory{avail: 1000}
	c, changes := loadController(t, "load:0.5,hysteresis=10%,interval=5s", 0, mem)
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	apply(t, c, at(0), 500)

	// Page-cache noise of ±8% moves the raw cap by ±40 bytes, inside the
	// ±50 band: no resize, tick after tick.
	for i, avail := range []int64{1080, 920, 1060, 940, 1080, 920} {
		mem.set(avail, nil)
		apply(t, c, at(5*(i+1)), 500)
	}
	// Exactly at the band's edge (550 is 10% above 500) is still inside.
	mem.set(1100, nil)
	apply(t, c, at(35), 500)
	// 12% up: grow.
	mem.set(1120, nil)
	apply(t, c, at(40), 560)
	// A drop right after a change waits for the interval...
	mem.set(600, nil)
	apply(t, c, at(42), 560)
	apply(t, c, at(44), 560)
	// ...and then shrinks.
	apply(t, c, at(45), 300)
	if len(*changes) != 3 {
		t.Fatalf("changes %v, want 0->500, 500->560, 560->300", *changes)
	}
}

func TestControllerRefusesAnInvalidLoadPolicy(t *testing.T) {
	c := &Controller{Pool: newPool(t, 0), Policy: &LoadPolicy{Base: StaticPolicy{Frac: 1}, Frac: 0.5}, Budget: 1000, Memory: &fakeMemory{}}
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "load policy: interval 0s must be positive") {
		t.Fatalf("Run with a zero interval = %v", err)
	}
	if _, err := NewLoadPolicy(nil, 0.5); err != nil {
		t.Fatalf("NewLoadPolicy: %v", err)
	}
	if _, err := NewLoadPolicy(mustParse(t, "load:0.5"), 0.5); err == nil || !strings.Contains(err.Error(), "is itself a load policy") {
		t.Fatalf("NewLoadPolicy over a load policy = %v", err)
	}
}

func TestControllerLoadFloorAndCeiling(t *testing.T) {
	mem := &fakeMemory{avail: 100}
	c, _ := loadController(t, "load:0.5,min=300B,max=600B,hysteresis=0,interval=1s", 0, mem)
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	apply(t, c, t0, 300) // floor: half of 100 is below min
	mem.set(1<<40, nil)
	apply(t, c, t0.Add(time.Second), 600) // ceiling
	mem.set(1000, nil)
	apply(t, c, t0.Add(2*time.Second), 500)

	// max above the budget: the budget (Base static:1 of 1000) still caps.
	c2, _ := loadController(t, "load:1,max=1MiB", 0, &fakeMemory{avail: 1 << 30})
	apply(t, c2, t0, 1000)
}

func TestControllerLoadSourceErrors(t *testing.T) {
	boom := errors.New("read /proc/meminfo: permission denied")
	mem := &fakeMemory{err: boom}
	c, changes := loadController(t, "window:08:00-22:00=0.2,default=0.8,tz=UTC;load:0.5", 700, mem)
	t0 := time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC)

	// No reading yet: the pool is not raised above its 700 (the window
	// alone would say 800), and the error is returned and reported.
	got, err := c.Apply(t0)
	if !errors.Is(err, boom) || got != 700 || c.Pool.Total() != 700 {
		t.Fatalf("Apply with a failing source = %d, %v", got, err)
	}
	if !strings.Contains(err.Error(), "policy window:08:00-22:00=0.2,default=0.8,tz=UTC;load:0.5 at 2026-07-01T07:00:00Z") {
		t.Fatalf("error %q does not name the policy and time", err)
	}
	if n := len(*changes); n != 1 || (*changes)[0].Err == nil || (*changes)[0].New != 700 {
		t.Fatalf("changes %v, want one failure keeping 700", *changes)
	}

	mem.set(1000, nil)
	apply(t, c, t0.Add(time.Minute), 500)

	// The source fails again: the last cap stays, but the window edge at
	// 08:00 still shrinks the pool.
	mem.set(0, boom)
	got, err = c.Apply(t0.Add(30 * time.Minute))
	if !errors.Is(err, boom) || got != 500 {
		t.Fatalf("Apply with a failing source after a reading = %d, %v", got, err)
	}
	got, err = c.Apply(t0.Add(time.Hour))
	if !errors.Is(err, boom) || got != 200 || c.Pool.Total() != 200 {
		t.Fatalf("window edge during a failing source = %d, %v", got, err)
	}
	last := (*changes)[len(*changes)-1]
	if last.Old != 500 || last.New != 200 || !errors.Is(last.Err, boom) {
		t.Fatalf("last change %+v", last)
	}
}

func TestControllerLoadWithWindow(t *testing.T) {
	mem := &fakeMemory{avail: 1000}
	c, _ := loadController(t, "window:08:00-22:00=0.2,default=0.8,tz=UTC;load:0.5,interval=1s", 0, mem)
	day := func(h int) time.Time { return time.Date(2026, 7, 1, h, 0, 0, 0, time.UTC) }
	apply(t, c, day(7), 500)  // min(0.8×1000, 0.5×1000)
	apply(t, c, day(8), 200)  // the window is smaller
	mem.set(200, nil)         // a neighbour grows
	apply(t, c, day(9), 100)  // now the load cap is smaller
	mem.set(1000, nil)        // and shrinks back
	apply(t, c, day(10), 200) // the window caps again
	apply(t, c, day(22), 500) // off-peak: the load cap
}

// TestControllerLoadRun drives Run with a fake clock: the source is read
// every interval between window edges.
func TestControllerLoadRun(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	mem := &fakeMemory{avail: 1000}
	c := &Controller{Pool: newPool(t, 0), Policy: mustParse(t, "load:0.5,interval=5s"), Budget: 1000, Clock: clk, Memory: mem}
	changes, stop := startRun(t, c)
	expect := func(old, new int64) { t.Helper(); expectChange(t, changes, c.Pool, old, new) }
	expect(0, 500)
	mem.set(400, nil)
	clk.Set(clk.Now().Add(5 * time.Second))
	expect(500, 200)
	mem.set(0, errors.New("cgroup gone"))
	clk.Set(clk.Now().Add(5 * time.Second))
	if ch := nextChange(t, changes); ch.Err == nil || ch.New != 200 || !strings.Contains(ch.Err.Error(), "cgroup gone") {
		t.Fatalf("change = %+v, want the source's error and the size kept", ch)
	}
	mem.set(1000, nil)
	clk.Set(clk.Now().Add(5 * time.Second))
	expect(200, 500)
	stop()
}

// TestControllerLoadRace takes and returns leases from many goroutines while
// the controller resizes the pool after a swinging source. Run with -race.
func TestControllerLoadRace(t *testing.T) {
	mem := &fakeMemory{avail: 1000}
	pool := newPool(t, 0)
	var violations atomic.Int64
	pool.onGrant = func(used, total int64) {
		if used > total || pool.checkInvariants() != nil {
			violations.Add(1)
		}
	}
	var resizes, grants atomic.Int64
	c := &Controller{Pool: pool, Policy: mustParse(t, "load:0.8,hysteresis=0,interval=1ns"), Budget: 1 << 20, Memory: mem,
		OnChange: func(Change) { resizes.Add(1) }}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				l, err := pool.PreFetch(ctx, fmt.Sprintf("w%d", w), 1+rng.Int64N(300))
				cancel()
				if err != nil {
					if !errors.Is(err, ErrTooLarge) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("PreFetch: %v", err)
						return
					}
					continue
				}
				grants.Add(1)
				if err := pool.Return(l); err != nil {
					t.Errorf("Return: %v", err)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	// At least 2000 resizes, and on until the workers got grants in
	// between (a loaded machine may not schedule them at first).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 2000 || (grants.Load() < 100 && time.Now().Before(deadline)); i++ {
		mem.set(rng.Int64N(2000), nil)
		if _, err := c.Apply(now.Add(time.Duration(i) * time.Millisecond)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	if n := violations.Load(); n > 0 {
		t.Fatalf("%d grants broke the pool's books or exceeded its total", n)
	}
	if s := pool.Stats(); s.Used != 0 || s.Leases != 0 {
		t.Fatalf("leases left: %+v", s)
	}
	if grants.Load() == 0 || resizes.Load() < 100 {
		t.Fatalf("%d grants and %d resizes: the test did not race anything", grants.Load(), resizes.Load())
	}
}
