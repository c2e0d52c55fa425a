package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/compacthost/compacthost/mempool"
)

// humanBytes is a byte count flag that accepts human sizes: 4GiB, 512Mi,
// 1.5G, 800MB, 1048576. Binary units (Ki, Mi, Gi, Ti, with or without B)
// are powers of 1024; decimal ones (K, M, G, T, with or without B) are
// powers of 1000. Case is ignored except that a lone "b" means bytes.
type humanBytes int64

// parseHumanBytes and formatHumanBytes are the pool's size syntax, so that
// --memory and the min=/max= of a load: policy read sizes alike.
var (
	parseHumanBytes  = mempool.ParseSize
	formatHumanBytes = mempool.FormatSize
)

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
