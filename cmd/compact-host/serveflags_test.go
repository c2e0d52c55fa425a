package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseHumanBytes(t *testing.T) {
	good := map[string]int64{
		"4GiB": 4 << 30, "4gi": 4 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "800MB": 800e6, "2G": 2e9,
		"1048576": 1 << 20, "64 KiB": 64 << 10, "1TiB": 1 << 40, "10b": 10, "0": 0,
	}
	for s, want := range good {
		if got, err := parseHumanBytes(s); err != nil || got != want {
			t.Errorf("parseHumanBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	bad := map[string]string{
		"4XB": `unknown unit "XB"`, "GiB": "want a number and a unit", "": "want a number and a unit",
		"1.2.3MiB": "want a number and a unit", "-1GiB": "want a number and a unit", "99999999TiB": "too large",
	}
	for s, want := range bad {
		if _, err := parseHumanBytes(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseHumanBytes(%q): %v; want an error with %q", s, err, want)
		}
	}
	for n, want := range map[int64]string{4 << 30: "4GiB", 1536 << 20: "1536MiB", 1000: "1000", 0: "0", 1 << 40: "1TiB"} {
		if got := formatHumanBytes(n); got != want {
			t.Errorf("formatHumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestEnvTwins(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var mem humanBytes
	workers := fs.Int("workers", 2, "workers")
	fs.Var(&mem, "memory", "memory")
	listen := fs.String("listen", "a", "listen")
	twins := envTwins{"workers": "CH_TEST_WORKERS", "memory": "CH_TEST_MEMORY", "listen": "CH_TEST_LISTEN"}
	twins.describe(fs)
	if u := fs.Lookup("memory").Usage; u != "memory [$CH_TEST_MEMORY]" {
		t.Fatalf("usage %q", u)
	}
	t.Setenv("CH_TEST_WORKERS", "7")
	t.Setenv("CH_TEST_MEMORY", "1GiB")
	t.Setenv("CH_TEST_LISTEN", "from-env")
	if err := fs.Parse([]string{"--listen", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := twins.apply(fs); err != nil {
		t.Fatal(err)
	}
	if *workers != 7 || mem != 1<<30 || *listen != "from-flag" {
		t.Fatalf("workers %d, memory %d, listen %q: the flag wins, the env fills the rest", *workers, mem, *listen)
	}
	t.Setenv("CH_TEST_WORKERS", "many")
	fs.Lookup("workers").Changed = false
	err := twins.apply(fs)
	if err == nil || !strings.HasPrefix(err.Error(), `$CH_TEST_WORKERS="many" (for --workers): `) {
		t.Fatalf("bad env value: %v", err)
	}
}
