package mempool

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) At(t time.Time) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(f.now) {
		ch <- f.now
	} else {
		f.timers = append(f.timers, fakeTimer{t, ch})
	}
	return ch
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	kept := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.at.After(t) {
			tm.ch <- t
		} else {
			kept = append(kept, tm)
		}
	}
	f.timers = kept
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustParse(t *testing.T, s string) Policy {
	t.Helper()
	p, err := ParsePolicy(s)
	if err != nil {
		t.Fatalf("ParsePolicy(%q): %v", s, err)
	}
	return p
}

func TestParsePolicyCanonicalRoundTrip(t *testing.T) {
	cases := map[string]string{
		"static:0.5":                         "static:0.5",
		" static:25%":                        "static:0.25",
		"static:1":                           "static:1",
		"window:08:00-22:00=0.2,default=0.8": "window:08:00-22:00=0.2,default=0.8",
		"window:default=80%, 08:00-22:00=20% ,tz=Europe/Berlin":              "window:08:00-22:00=0.2,default=0.8,tz=Europe/Berlin",
		"window:22:00-06:00=0.8,default=0.2,tz=Asia/Tokyo":                   "window:22:00-06:00=0.8,default=0.2,tz=Asia/Tokyo",
		"window:08:00-12:00=0.2,12:00-20:00=0.3,20:00-24:00=0.5,default=0.9": "window:08:00-12:00=0.2,12:00-20:00=0.3,20:00-24:00=0.5,default=0.9",
	}
	checkCanonical(t, cases)
}

// checkCanonical parses each input, checks its String against the canonical
// form, and that the canonical form parses back to itself.
func checkCanonical(t *testing.T, cases map[string]string) {
	t.Helper()
	for in, want := range cases {
		p := mustParse(t, in)
		if got := p.String(); got != want {
			t.Errorf("ParsePolicy(%q).String() = %q, want %q", in, got, want)
		}
		if again := mustParse(t, p.String()); again.String() != want {
			t.Errorf("round trip of %q gave %q", want, again)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	cases := map[string]string{
		"":                                    "missing kind",
		"static":                              "missing kind",
		"static:":                             `fraction "" is not a number`,
		"static:abc":                          `fraction "abc" is not a number`,
		"static:1.5":                          "fraction 1.5 must be in (0, 1]",
		"static:0":                            "fraction 0 must be in (0, 1]",
		"static:NaN":                          "must be in (0, 1]",
		"static:-10%":                         "fraction -0.1 must be in (0, 1]",
		"dynamic:0.5":                         `unknown kind "dynamic"`,
		"window:08:00-22:00=0.2":              "missing default=FRACTION",
		"window:default=0.8":                  "no HH:MM-HH:MM=FRACTION window",
		"window:08:00-22:00,default=0.8":      `item 1 "08:00-22:00": want HH:MM-HH:MM=FRACTION`,
		"window:8:00-22:00=0.2,default=0.8":   `start: time "8:00" is not HH:MM`,
		"window:0800-2200=0.2,default=0.8":    `start: time "0800" is not HH:MM`,
		"window:08:00=0.2,default=0.8":        "want HH:MM-HH:MM before '='",
		"window:08:00-25:00=0.2,default=0.8":  `end: time "25:00" out of range`,
		"window:24:00-06:00=0.2,default=0.8":  `start: time "24:00" out of range`,
		"window:08:60-09:00=0.2,default=0.8":  `time "08:60" out of range`,
		"window:08:00-08:00=0.2,default=0.8":  "window 08:00-08:00=0.2 is empty or the whole day",
		"window:00:00-24:00=0.2,default=0.8":  "is empty or the whole day",
		"window:08:00-22:00=120%,default=0.8": "fraction 1.2 must be in (0, 1]",
		"window:08:00-22:00=0.2,default=0":    "fraction 0 must be in (0, 1]",
		"window:08:00-12:00=0.2,11:00-13:00=0.3,default=0.8":         "windows 08:00-12:00=0.2 and 11:00-13:00=0.3 overlap",
		"window:22:00-06:00=0.2,05:00-07:00=0.3,default=0.8":         "windows 22:00-06:00=0.2 and 05:00-07:00=0.3 overlap",
		"window:08:00-22:00=0.2,default=0.8,default=0.5":             "default given twice",
		"window:08:00-22:00=0.2,default=0.8,tz=Mars/Olympus_Mons":    `unknown time zone "Mars/Olympus_Mons"`,
		"window:08:00-22:00=0.2,default=0.8,tz=UTC,tz=Europe/Berlin": "tz given twice",
	}
	for in, want := range cases {
		p, err := ParsePolicy(in)
		if err == nil {
			t.Errorf("ParsePolicy(%q) = %v, want error containing %q", in, p, want)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "mempool: policy") {
			t.Errorf("ParsePolicy(%q) error %q does not contain %q", in, err, want)
		}
	}
}

func TestNewWindowPolicyValidates(t *testing.T) {
	if _, err := NewWindowPolicy(nil, 0.5, time.UTC); err == nil || !strings.Contains(err.Error(), "no windows") {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewWindowPolicy([]Window{{Start: -1, End: 60, Fraction: 0.5}}, 0.5, time.UTC); err == nil {
		t.Fatal("negative start accepted")
	}
	p, err := NewWindowPolicy([]Window{{Start: 60, End: 120, Fraction: 0.5}}, 1, nil)
	if err != nil || p.Location() != time.Local || p.String() != "window:01:00-02:00=0.5,default=1" {
		t.Fatalf("p = %v, %v", p, err)
	}
}

func TestStaticPolicy(t *testing.T) {
	p := mustParse(t, "static:0.5")
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got := TotalAt(p, 1000, now); got != 500 {
		t.Fatalf("TotalAt = %d", got)
	}
	if !p.NextChange(now).IsZero() {
		t.Fatal("static policy has a next change")
	}
}

func TestWindowAcrossMidnightInDSTFreeZone(t *testing.T) {
	tokyo := mustLoad(t, "Asia/Tokyo") // no DST since 1951
	p := mustParse(t, "window:22:00-06:00=0.8,default=0.2,tz=Asia/Tokyo")
	at := func(day, h, m, s int) time.Time { return time.Date(2026, 7, day, h, m, s, 0, tokyo) }
	fractions := []struct {
		t    time.Time
		want float64
	}{
		{at(1, 12, 0, 0), 0.2},
		{at(1, 21, 59, 59), 0.2},
		{at(1, 22, 0, 0), 0.8},
		{at(1, 23, 59, 59), 0.8},
		{at(2, 0, 0, 0), 0.8},
		{at(2, 5, 59, 59), 0.8},
		{at(2, 6, 0, 0), 0.2},
		{time.Date(2026, 7, 1, 13, 30, 0, 0, time.UTC), 0.8}, // 22:30 in Tokyo: the zone, not the argument's, decides
	}
	for _, c := range fractions {
		if got := p.Fraction(c.t); got != c.want {
			t.Errorf("Fraction(%s) = %v, want %v", c.t, got, c.want)
		}
	}
	nexts := []struct{ from, want time.Time }{
		{at(1, 12, 0, 0), at(1, 22, 0, 0)},
		{at(1, 22, 0, 0), at(2, 6, 0, 0)},
		{at(1, 23, 0, 0), at(2, 6, 0, 0)},
		{at(2, 3, 0, 0), at(2, 6, 0, 0)},
		{at(2, 6, 0, 0), at(2, 22, 0, 0)},
		{at(31, 23, 0, 0), time.Date(2026, 8, 1, 6, 0, 0, 0, tokyo)}, // month end
	}
	for _, c := range nexts {
		if got := p.NextChange(c.from); !got.Equal(c.want) {
			t.Errorf("NextChange(%s) = %s, want %s", c.from, got, c.want)
		}
	}
}

func TestWindowEndingAtMidnight(t *testing.T) {
	p := mustParse(t, "window:20:00-24:00=0.5,00:00-02:00=0.25,default=1,tz=UTC")
	at := func(day, h int) time.Time { return time.Date(2026, 5, day, h, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		t    time.Time
		want float64
	}{{at(1, 19), 1}, {at(1, 20), 0.5}, {at(1, 23), 0.5}, {at(2, 0), 0.25}, {at(2, 1), 0.25}, {at(2, 2), 1}} {
		if got := p.Fraction(c.t); got != c.want {
			t.Errorf("Fraction(%s) = %v, want %v", c.t, got, c.want)
		}
	}
	if got := p.NextChange(at(1, 21)); !got.Equal(at(2, 0)) {
		t.Errorf("NextChange = %s, want midnight", got)
	}
}

func TestWindowFollowsWallClockOverDST(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	p := mustParse(t, "window:22:00-06:00=0.8,default=0.2,tz=Europe/Berlin")
	// Clocks go forward at 02:00 on 2026-03-29 and back at 03:00 on 2026-10-25.
	spring := time.Date(2026, 3, 28, 22, 0, 0, 0, berlin)
	if got := p.NextChange(spring).Sub(spring); got != 7*time.Hour {
		t.Errorf("spring night window lasts %v, want 7h", got)
	}
	autumn := time.Date(2026, 10, 24, 22, 0, 0, 0, berlin)
	if got := p.NextChange(autumn).Sub(autumn); got != 9*time.Hour {
		t.Errorf("autumn night window lasts %v, want 9h", got)
	}
	if got := p.Fraction(spring.Add(6*time.Hour + 59*time.Minute)); got != 0.8 {
		t.Errorf("05:59 CEST fraction = %v", got)
	}
	if got := p.Fraction(spring.Add(7 * time.Hour)); got != 0.2 {
		t.Errorf("06:00 CEST fraction = %v", got)
	}
}

func TestControllerRunAcrossWindowEdges(t *testing.T) {
	tokyo := mustLoad(t, "Asia/Tokyo")
	clk := &fakeClock{now: time.Date(2026, 7, 1, 7, 0, 0, 0, tokyo)}
	pool := newPool(t, 0)
	c := &Controller{
		Pool:   pool,
		Policy: mustParse(t, "window:08:00-22:00=0.2,default=0.8,tz=Asia/Tokyo"),
		Budget: 1000,
		Clock:  clk,
	}
	changes, stop := startRun(t, c)
	expect := func(old, new int64) { t.Helper(); expectChange(t, changes, pool, old, new) }
	expect(0, 800) // 07:00 is off-peak

	lease := mustTry(t, pool, "night-plan", 500)
	clk.Set(time.Date(2026, 7, 1, 7, 59, 0, 0, tokyo))
	if pool.Total() != 800 {
		t.Fatalf("total changed before the edge: %d", pool.Total())
	}
	clk.Set(time.Date(2026, 7, 1, 8, 0, 0, 0, tokyo))
	expect(800, 200)
	// The running lease survives the shrink; new grants wait for it.
	if s := pool.Stats(); s.Used != 500 || s.Total != 200 {
		t.Fatalf("stats after shrink = %+v", s)
	}
	if _, err := pool.TryPreFetch("day-plan", 100); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("grant while over the day total: %v", err)
	}
	mustReturn(t, pool, lease)
	mustReturn(t, pool, mustTry(t, pool, "day-plan", 100))

	clk.Set(time.Date(2026, 7, 1, 22, 0, 0, 0, tokyo))
	expect(200, 800)
	clk.Set(time.Date(2026, 7, 2, 0, 30, 0, 0, tokyo)) // past midnight: still off-peak
	clk.Set(time.Date(2026, 7, 2, 8, 0, 0, 0, tokyo))
	expect(800, 200)
	// A jump over several edges lands in the right state.
	clk.Set(time.Date(2026, 7, 5, 23, 0, 0, 0, tokyo))
	expect(200, 800)
	stop()
}

// startRun runs c in the background and reports its changes on the returned
// channel; stop cancels Run and checks that it returned context.Canceled.
func startRun(t *testing.T, c *Controller) (changes <-chan Change, stop func()) {
	t.Helper()
	ch := make(chan Change, 16)
	c.OnChange = func(c Change) { ch <- c }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return ch, func() {
		t.Helper()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	}
}

// nextChange waits for the controller's next reported change.
func nextChange(t *testing.T, changes <-chan Change) Change {
	t.Helper()
	select {
	case ch := <-changes:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported")
		return Change{}
	}
}

// expectChange waits for a successful resize old -> new and checks the pool.
func expectChange(t *testing.T, changes <-chan Change, pool *Pool, old, new int64) {
	t.Helper()
	if ch := nextChange(t, changes); ch.Err != nil || ch.Old != old || ch.New != new {
		t.Fatalf("change = %+v, want %d -> %d", ch, old, new)
	}
	if pool.Total() != new {
		t.Fatalf("pool total %d, want %d", pool.Total(), new)
	}
}

func TestControllerStaticAndValidation(t *testing.T) {
	pool := newPool(t, 0)
	c := &Controller{Pool: pool, Policy: StaticPolicy{Frac: 0.5}, Budget: 1000, Clock: &fakeClock{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitStats(t, pool, "total 500", func(s Stats) bool { return s.Total == 500 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	bad := &Controller{Pool: pool, Policy: StaticPolicy{Frac: 0.5}}
	if err := bad.Run(context.Background()); !errors.Is(err, ErrInvalidSize) {
		t.Fatalf("Run without budget = %v", err)
	}
	if _, err := (&Controller{Budget: 1}).Apply(time.Now()); err == nil {
		t.Fatal("Apply without pool succeeded")
	}
}

// FuzzParsePolicy: no input panics, and every accepted policy prints a form
// that parses back to the same policy.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"static:0.5", "static:25%", "window:08:00-22:00=0.2,default=0.8",
		"window:22:00-06:00=80%,default=20%,tz=Asia/Tokyo",
		"window:08:00-12:00=0.2,12:00-24:00=0.3,default=0.9,tz=Europe/Berlin",
		"window:08:00-08:00=0.2,default=0.8", "window:,,,",
		"load:0.5", "window:08:00-22:00=0.2,default=0.8;load:0.5,hysteresis=5%,interval=10s,min=1GiB,max=8GiB", "static:1e-300", ":", "window:24:00-00:00=1,default=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		again, err := ParsePolicy(p.String())
		if err != nil {
			t.Fatalf("%q parsed, but its String %q does not: %v", s, p.String(), err)
		}
		if again.String() != p.String() {
			t.Fatalf("round trip of %q: %q != %q", s, again.String(), p.String())
		}
		now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
		if f := p.Fraction(now); !(f > 0 && f <= 1) {
			t.Fatalf("%q: fraction %v", s, f)
		}
		if next := p.NextChange(now); !next.IsZero() && !next.After(now) {
			t.Fatalf("%q: next change %v not after %v", s, next, now)
		}
	})
}
