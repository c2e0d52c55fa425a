package mempool

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // tz=Zone/Name works without a system zoneinfo database
)

// Policy decides which fraction of a node's memory budget the pool gets at a
// given time. A [Controller] applies it to a [Pool].
type Policy interface {
	// Fraction returns the pool's share of the budget at t, in (0, 1].
	Fraction(t time.Time) float64
	// NextChange returns the first instant after t at which Fraction may
	// change, or the zero Time if it never changes.
	NextChange(t time.Time) time.Time
	// String returns the policy in the form ParsePolicy accepts.
	String() string
}

// TotalAt returns the pool total a policy gives a budget at t:
// floor(budget * Fraction(t)).
func TotalAt(p Policy, budget int64, t time.Time) int64 {
	return int64(math.Floor(float64(budget) * p.Fraction(t)))
}

// StaticPolicy gives the pool a fixed fraction of the budget.
type StaticPolicy struct {
	Frac float64
}

// Fraction implements Policy.
func (s StaticPolicy) Fraction(time.Time) float64 { return s.Frac }

// NextChange implements Policy: a static policy never changes.
func (s StaticPolicy) NextChange(time.Time) time.Time { return time.Time{} }

// String implements Policy.
func (s StaticPolicy) String() string { return "static:" + formatFraction(s.Frac) }

// Minutes after midnight; 24:00 is allowed only as a window end.
const minutesPerDay = 24 * 60

// Window is a daily interval of local wall-clock time [Start, End) in minutes
// after midnight. End may be 1440 (24:00). A window with End <= Start crosses
// midnight: 22:00-06:00 covers 22:00 to 06:00 the next morning.
type Window struct {
	Start, End int
	Fraction   float64
}

func (w Window) contains(minute int) bool {
	if w.Start < w.End {
		return w.Start <= minute && minute < w.End
	}
	return minute >= w.Start || minute < w.End
}

// spans returns the window as one or two intervals within [0, 1440).
func (w Window) spans() [][2]int {
	end := w.End
	if end == 0 {
		end = minutesPerDay
	}
	if w.Start < end {
		return [][2]int{{w.Start, end}}
	}
	return [][2]int{{w.Start, minutesPerDay}, {0, end}}
}

func (w Window) String() string {
	return formatMinute(w.Start) + "-" + formatMinute(w.End) + "=" + formatFraction(w.Fraction)
}

// WindowPolicy gives the pool a fraction per daily window of local time in a
// time zone, and Default outside every window. Wall-clock times follow the
// zone's DST rules: on a day when clocks jump, a window keeps its wall-clock
// edges and is that much shorter or longer in real time.
type WindowPolicy struct {
	windows  []Window
	def      float64
	loc      *time.Location
	explicit bool // the zone was given explicitly (String prints it)
}

// NewWindowPolicy validates and builds a WindowPolicy. loc nil means the
// machine's local zone. Windows must not be empty or overlap, and every
// fraction must be in (0, 1].
func NewWindowPolicy(windows []Window, def float64, loc *time.Location) (*WindowPolicy, error) {
	if err := checkWindows(windows, def); err != nil {
		return nil, fmt.Errorf("mempool: window policy: %w", err)
	}
	return newWindowPolicy(windows, def, loc), nil
}

func checkWindows(windows []Window, def float64) error {
	if len(windows) == 0 {
		return fmt.Errorf("no windows")
	}
	if err := checkFraction(def); err != nil {
		return fmt.Errorf("default %w", err)
	}
	for i, w := range windows {
		if w.Start < 0 || w.Start >= minutesPerDay || w.End < 0 || w.End > minutesPerDay {
			return fmt.Errorf("window %d has start %d / end %d minutes outside 00:00-24:00", i+1, w.Start, w.End)
		}
		if w.Start == w.End || (w.Start == 0 && w.End == minutesPerDay) {
			return fmt.Errorf("window %s is empty or the whole day (use static)", w)
		}
		if err := checkFraction(w.Fraction); err != nil {
			return fmt.Errorf("window %s: %w", w, err)
		}
		for _, prev := range windows[:i] {
			if overlap(prev, w) {
				return fmt.Errorf("windows %s and %s overlap", prev, w)
			}
		}
	}
	return nil
}

func newWindowPolicy(windows []Window, def float64, loc *time.Location) *WindowPolicy {
	p := &WindowPolicy{windows: append([]Window(nil), windows...), def: def, loc: loc, explicit: loc != nil}
	if loc == nil {
		p.loc = time.Local
	}
	return p
}

func overlap(a, b Window) bool {
	for _, x := range a.spans() {
		for _, y := range b.spans() {
			if x[0] < y[1] && y[0] < x[1] {
				return true
			}
		}
	}
	return false
}

// Fraction implements Policy.
func (p *WindowPolicy) Fraction(t time.Time) float64 {
	lt := t.In(p.loc)
	minute := lt.Hour()*60 + lt.Minute()
	for _, w := range p.windows {
		if w.contains(minute) {
			return w.Fraction
		}
	}
	return p.def
}

// NextChange implements Policy: the next window start or end after t.
func (p *WindowPolicy) NextChange(t time.Time) time.Time {
	y, m, d := t.In(p.loc).Date()
	var best time.Time
	for day := -1; day <= 2; day++ {
		for _, w := range p.windows {
			for _, edge := range []int{w.Start, w.End} {
				at := time.Date(y, m, d+day, edge/60, edge%60, 0, 0, p.loc)
				if at.After(t) && (best.IsZero() || at.Before(best)) {
					best = at
				}
			}
		}
	}
	return best
}

// Location returns the policy's time zone.
func (p *WindowPolicy) Location() *time.Location { return p.loc }

// String implements Policy.
func (p *WindowPolicy) String() string {
	var b strings.Builder
	b.WriteString("window:")
	for _, w := range p.windows {
		b.WriteString(w.String())
		b.WriteByte(',')
	}
	b.WriteString("default=" + formatFraction(p.def))
	if p.explicit {
		b.WriteString(",tz=" + p.loc.String())
	}
	return b.String()
}

// ParsePolicy parses a policy from a short configuration string:
//
//	static:0.5                                  half the budget, always
//	window:08:00-22:00=0.2,default=0.8          20% by day, 80% otherwise
//	window:22:00-06:00=80%,default=20%,tz=Asia/Tokyo
//	window:08:00-12:00=0.2,12:00-20:00=0.3,default=0.9,tz=Europe/Berlin
//	load:0.5                                    the budget, capped at half the available memory
//	load:0.5,hysteresis=5%,interval=10s,min=1GiB,max=8GiB
//	window:08:00-22:00=0.2,default=0.8;load:0.5 the smaller of the two
//
// Fractions are decimals in (0, 1] or percentages. Times are HH:MM (24:00 is
// allowed as an end). default= is required for window policies; tz= names an
// IANA zone and defaults to the machine's local zone. Items may come in any
// order, separated by commas.
//
// A load policy ([LoadPolicy]) starts with its fraction; hysteresis (default
// 10%), interval (a Go duration, default 5s), min and max (sizes such as
// 1GiB) are optional. It may follow a static or window policy after a ';',
// which it then caps; alone it caps static:1.
func ParsePolicy(s string) (Policy, error) {
	first, second, combined := strings.Cut(s, ";")
	if !combined {
		return parseOne(s, s, nil)
	}
	if strings.Contains(second, ";") {
		return nil, fmt.Errorf("mempool: policy %q: more than two parts (want TIME_POLICY;load:...)", s)
	}
	base, err := parseOne(s, first, nil)
	if err != nil {
		return nil, err
	}
	if _, ok := base.(*LoadPolicy); ok {
		return nil, fmt.Errorf("mempool: policy %q: a load policy must come last, after the static or window policy it caps", s)
	}
	p, err := parseOne(s, second, base)
	if err != nil {
		return nil, err
	}
	if _, ok := p.(*LoadPolicy); !ok {
		return nil, fmt.Errorf("mempool: policy %q: only a load policy may follow ';'", s)
	}
	return p, nil
}

// parseOne parses one policy part of s. base is the policy a load part caps
// (nil when part stands alone).
func parseOne(s, part string, base Policy) (Policy, error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(part), ":")
	if !ok {
		return nil, fmt.Errorf("mempool: policy %q: missing kind (want static:FRACTION, window:HH:MM-HH:MM=FRACTION,...,default=FRACTION or load:FRACTION)", s)
	}
	switch kind {
	case "static":
		f, err := parseFraction(rest)
		if err != nil {
			return nil, fmt.Errorf("mempool: policy %q: %w", s, err)
		}
		return StaticPolicy{Frac: f}, nil
	case "window":
		return parseWindowPolicy(s, rest)
	case "load":
		return parseLoadPolicy(s, rest, base)
	default:
		return nil, fmt.Errorf("mempool: policy %q: unknown kind %q (want static, window or load)", s, kind)
	}
}

func parseWindowPolicy(s, rest string) (Policy, error) {
	var windows []Window
	def := math.NaN()
	var loc *time.Location
	for i, item := range strings.Split(rest, ",") {
		item = strings.TrimSpace(item)
		bad := itemError(s, "item", i, item)
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			return nil, bad("want HH:MM-HH:MM=FRACTION, default=FRACTION or tz=ZONE")
		}
		switch key {
		case "default":
			if !math.IsNaN(def) {
				return nil, bad("default given twice")
			}
			f, err := parseFraction(val)
			if err != nil {
				return nil, bad("%v", err)
			}
			def = f
		case "tz":
			if loc != nil {
				return nil, bad("tz given twice")
			}
			l, err := time.LoadLocation(val)
			if err != nil || val == "" {
				return nil, bad("unknown time zone %q", val)
			}
			loc = l
		default:
			from, to, ok := strings.Cut(key, "-")
			if !ok {
				return nil, bad("want HH:MM-HH:MM before '='")
			}
			start, err := parseClock(from, false)
			if err != nil {
				return nil, bad("start: %v", err)
			}
			end, err := parseClock(to, true)
			if err != nil {
				return nil, bad("end: %v", err)
			}
			f, err := parseFraction(val)
			if err != nil {
				return nil, bad("%v", err)
			}
			windows = append(windows, Window{Start: start, End: end, Fraction: f})
		}
	}
	if len(windows) == 0 {
		return nil, fmt.Errorf("mempool: policy %q: no HH:MM-HH:MM=FRACTION window", s)
	}
	if math.IsNaN(def) {
		return nil, fmt.Errorf("mempool: policy %q: missing default=FRACTION for the time outside the windows", s)
	}
	if err := checkWindows(windows, def); err != nil {
		return nil, fmt.Errorf("mempool: policy %q: %w", s, err)
	}
	return newWindowPolicy(windows, def, loc), nil
}

// itemError returns the error constructor for the i-th (0-based) item of
// policy s.
func itemError(s, what string, i int, item string) func(format string, args ...any) error {
	return func(format string, args ...any) error {
		return fmt.Errorf("mempool: policy %q: %s %d %q: %s", s, what, i+1, item, fmt.Sprintf(format, args...))
	}
}

// parseClock parses HH:MM into minutes after midnight; 24:00 only if asEnd.
func parseClock(s string, asEnd bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	if h == 24 && m == 0 && asEnd {
		return minutesPerDay, nil
	}
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("time %q out of range 00:00-23:59", s)
	}
	return h*60 + m, nil
}

func parseFraction(s string) (float64, error) {
	f, err := parseRatio(s)
	if err != nil {
		return 0, err
	}
	return f, checkFraction(f)
}

// parseRatio parses a decimal or a percentage without checking its range.
func parseRatio(s string) (float64, error) {
	s = strings.TrimSpace(s)
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = t, 100
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("fraction %q is not a number", s)
	}
	return f / scale, nil
}

func checkFraction(f float64) error {
	if !(f > 0 && f <= 1) { // also rejects NaN
		return fmt.Errorf("fraction %v must be in (0, 1]", f)
	}
	return nil
}

func formatFraction(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func formatMinute(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
