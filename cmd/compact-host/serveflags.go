package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
)

// humanBytes is a byte count flag that accepts human sizes: 4GiB, 512Mi,
// 1.5G, 800MB, 1048576. Binary units (Ki, Mi, Gi, Ti, with or without B)
// are powers of 1024; decimal ones (K, M, G, T, with or without B) are
// powers of 1000. Case is ignored except that a lone "b" means bytes.
type humanBytes int64

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
	"gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// parseHumanBytes parses a size such as "4GiB" into bytes.
func parseHumanBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number and a unit, such as 4GiB or 512MiB", s)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, t[i:])
	}
	v := f * mult
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// formatHumanBytes prints n with the largest binary unit that divides it
// exactly (4GiB, 1536MiB), else in bytes.
func formatHumanBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (h *humanBytes) String() string { return formatHumanBytes(int64(*h)) }
func (h *humanBytes) Type() string   { return "size" }
func (h *humanBytes) Set(s string) error {
	v, err := parseHumanBytes(s)
	if err != nil {
		return err
	}
	*h = humanBytes(v)
	return nil
}

// envTwins maps flag names to environment variables read when the flag is
// not given on the command line.
type envTwins map[string]string

// describe appends " [$VAR]" to each twin's usage text.
func (e envTwins) describe(fs *pflag.FlagSet) {
	for name, env := range e {
		if f := fs.Lookup(name); f != nil {
			f.Usage += " [$" + env + "]"
		}
	}
}

// apply sets every flag not given on the command line from its non-empty
// environment variable; a bad value is a usage error naming the variable.
func (e envTwins) apply(fs *pflag.FlagSet) error {
	for name, env := range e {
		v, ok := os.LookupEnv(env)
		f := fs.Lookup(name)
		if !ok || v == "" || f == nil || f.Changed {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return withCode(exitUsage, fmt.Errorf("$%s=%q (for --%s): %w", env, v, name, err))
		}
	}
	return nil
}
