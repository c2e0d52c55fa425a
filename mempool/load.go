package mempool

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults of a load: policy's settings.
const (
	DefaultLoadHysteresis = 0.10            // relative change the load cap ignores
	DefaultLoadInterval   = 5 * time.Second // how often the memory source is read
)

// LoadPolicy makes the pool follow the memory the machine (or the process's
// cgroup) has left: it caps the total of a time policy (Base) at a share of
// the memory available to this process. A [Controller] computes the cap on
// every tick from its [MemorySource]:
//
//	cap = clamp(floor(Frac × (Available + min(Leased, Self))), Min, Max)
//	total = min(floor(Budget × Base.Fraction(now)), cap)
//
// Available and Self come from the source (Self is this process's resident
// memory), Leased is the bytes the pool's leases hold. The leases' resident
// part counts as available because it is this process's own, so the pool
// does not shrink as its own tasks fill it (see RATIONALE.md). The cap moves only when the new value
// differs from the current cap by more than Hysteresis (relative), and at
// most once per Interval.
type LoadPolicy struct {
	// Base is the time policy the cap applies to; a load policy given alone
	// has StaticPolicy{Frac: 1}, so --memory stays the ceiling.
	Base Policy
	// Frac is the share of the available memory the pool may take, in (0, 1].
	Frac float64
	// Hysteresis is the relative change of the cap that is ignored, in [0, 1).
	Hysteresis float64
	// Interval is how often the source is read and the least time between
	// two changes of the cap; positive.
	Interval time.Duration
	// Min and Max bound the cap in bytes; 0 means no bound.
	Min, Max int64
}

// NewLoadPolicy returns a load policy over base (nil: StaticPolicy{1}) with
// the default hysteresis and interval and no bounds.
func NewLoadPolicy(base Policy, frac float64) (*LoadPolicy, error) {
	p := defaultLoad(base, frac)
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("mempool: load policy: %w", err)
	}
	return p, nil
}

func defaultLoad(base Policy, frac float64) *LoadPolicy {
	if base == nil {
		base = StaticPolicy{Frac: 1}
	}
	return &LoadPolicy{Base: base, Frac: frac, Hysteresis: DefaultLoadHysteresis, Interval: DefaultLoadInterval}
}

func (p *LoadPolicy) check() error {
	switch {
	case p.Base == nil:
		return fmt.Errorf("no base policy")
	case p.Hysteresis < 0 || p.Hysteresis >= 1 || math.IsNaN(p.Hysteresis):
		return fmt.Errorf("hysteresis %v must be in [0, 1)", p.Hysteresis)
	case p.Interval <= 0:
		return fmt.Errorf("interval %v must be positive", p.Interval)
	case p.Min < 0 || p.Max < 0:
		return fmt.Errorf("min %d and max %d bytes must not be negative", p.Min, p.Max)
	case p.Max > 0 && p.Min > p.Max:
		return fmt.Errorf("min %s is above max %s", FormatSize(p.Min), FormatSize(p.Max))
	}
	if _, ok := p.Base.(*LoadPolicy); ok {
		return fmt.Errorf("base policy %s is itself a load policy", p.Base)
	}
	return checkFraction(p.Frac)
}

// Fraction implements Policy: the base policy's fraction of the budget,
// before the load cap.
func (p *LoadPolicy) Fraction(t time.Time) float64 { return p.Base.Fraction(t) }

// NextChange implements Policy: the base policy's next change. The load cap
// is re-read every Interval on top of it.
func (p *LoadPolicy) NextChange(t time.Time) time.Time { return p.Base.NextChange(t) }

// Cap returns the load cap for a reading m while the pool has leased bytes
// out: clamp(floor(Frac × (m.Available + min(leased, m.Self))), Min, Max).
func (p *LoadPolicy) Cap(m Memory, leased int64) int64 {
	ours := min(max(leased, 0), max(m.Self, 0))
	c := int64(math.Floor(p.Frac * float64(satAdd(max(m.Available, 0), ours))))
	if p.Max > 0 && c > p.Max {
		c = p.Max
	}
	if c < p.Min {
		c = p.Min
	}
	return c
}

// moves reports whether a new cap is far enough from the current one to be
// taken: more than Hysteresis of the current cap away.
func (p *LoadPolicy) moves(current, next int64) bool {
	band := p.Hysteresis * float64(current)
	d := float64(next - current)
	return d > band || -d > band
}

// String implements Policy: "load:F,..." alone, or "BASE;load:F,..." with
// only the settings that differ from the defaults.
func (p *LoadPolicy) String() string {
	var b strings.Builder
	if s, ok := p.Base.(StaticPolicy); !ok || s.Frac != 1 {
		b.WriteString(p.Base.String() + ";")
	}
	b.WriteString("load:" + formatFraction(p.Frac))
	if p.Hysteresis != DefaultLoadHysteresis {
		b.WriteString(",hysteresis=" + formatFraction(p.Hysteresis))
	}
	if p.Interval != DefaultLoadInterval {
		b.WriteString(",interval=" + p.Interval.String())
	}
	if p.Min > 0 {
		b.WriteString(",min=" + FormatSize(p.Min))
	}
	if p.Max > 0 {
		b.WriteString(",max=" + FormatSize(p.Max))
	}
	return b.String()
}

// parseLoadPolicy parses the part after "load:" of a policy string s.
func parseLoadPolicy(s, rest string, base Policy) (*LoadPolicy, error) {
	p := defaultLoad(base, math.NaN())
	seen := map[string]bool{}
	for i, item := range strings.Split(rest, ",") {
		item = strings.TrimSpace(item)
		bad := itemError(s, "load item", i, item)
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			if i != 0 {
				return nil, bad("want hysteresis=, interval=, min= or max=")
			}
			key, val = "fraction", item
		}
		if seen[key] {
			return nil, bad("%s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "fraction":
			p.Frac, err = parseFraction(val)
		case "hysteresis":
			p.Hysteresis, err = parseRatio(val) // 0 is allowed; check bounds it
		case "interval":
			p.Interval, err = time.ParseDuration(strings.TrimSpace(val))
		case "min":
			p.Min, err = ParseSize(val)
		case "max":
			p.Max, err = ParseSize(val)
		default:
			return nil, bad("unknown setting %q (want hysteresis, interval, min or max)", key)
		}
		if err != nil {
			return nil, bad("%v", err)
		}
	}
	if math.IsNaN(p.Frac) {
		return nil, fmt.Errorf("mempool: policy %q: load: missing the FRACTION first (load:0.5)", s)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("mempool: policy %q: load: %w", s, err)
	}
	return p, nil
}
