package admission

import (
	"strings"
	"testing"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

const hdr = "\x00asm\x01\x00\x00\x00"

func TestPrescanRefusesHugeCounts(t *testing.T) {
	cases := []struct {
		name, wasm, want string
	}{
		{"type results", hdr + "\x01\x09\x01\x60\x00\xff\xff\xff\xff\x0f\x7f", "results count 4294967295 exceeds the 1 bytes"},
		{"type count", hdr + "\x01\x06\xff\xff\xff\xff\x0f\x60", "type count 4294967295"},
		{"section size", hdr + "\x01\xff\xff\x03\x00", "section size count 65535 exceeds"},
		{"import count", hdr + "\x02\x05\x80\x80\x80\x80\x01", "import count 268435456"},
		{"locals", hdr + "\x0a\x0a\x01\x08\x02\xd1\x86\x03\x7f\x01\x7f\x0b", "more than 50000 locals"},
		{"table min", hdr + "\x04\x07\x01\x70\x00\x80\x80\x80\x01", "table minimum 2097152 entries exceeds"},
		{"data length", hdr + "\x0b\x09\x01\x01\xff\xff\xff\xff\x0f\x00\x00", "data length count 4294967295"},
		{"name section", hdr + "\x00\x0c\x04name\x01\x05\xff\xff\xff\x7f\x00", "function name count 268435455"},
		{"leb overflow", hdr + "\x01\x06\xff\xff\xff\xff\x7f\x00", "overflows"},
		{"truncated", hdr[:5], "shorter than the wasm header"},
	}
	for _, c := range cases {
		v := Prescan([]byte(c.wasm))
		if v == nil || v.Rule != RuleValidate || !strings.Contains(v.Detail, c.want) {
			t.Errorf("%s: %v, want %q", c.name, v, c.want)
		}
	}
}

func TestPrescanAcceptsWellFormed(t *testing.T) {
	m := wt.New()
	m.Import("compact_v1", "emit", []byte{wt.I32, wt.I32, wt.I32}, []byte{wt.I32})
	m.Memory(1, 4).Data(16, []byte("hello")).Custom("name", []byte{1, 4, 1, 0, 1, 'f'})
	m.Export("f", m.Func(wt.Func{Params: []byte{wt.I32}, Results: []byte{wt.I32}, Locals: []byte{wt.I64, wt.I32}, Body: wt.LocalGet(0)}))
	if v := Prescan(m.Bytes()); v != nil {
		t.Fatal(v)
	}
}

// FuzzPrescan: the pre-scan reads untrusted bytes and must never panic.
func FuzzPrescan(f *testing.F) {
	m := wt.New()
	m.Import("compact_v1", "emit", []byte{wt.I32, wt.I32, wt.I32}, []byte{wt.I32})
	m.Memory(1, 4).Data(16, []byte("hello")).Custom("name", []byte{1, 4, 1, 0, 1, 'f'})
	m.Export("f", m.Func(wt.Func{Params: []byte{wt.I32}, Results: []byte{wt.I32}, Locals: []byte{wt.I64}, Body: wt.LocalGet(0)}))
	f.Add(m.Bytes())
	f.Add([]byte(hdr + "\x09\x07\x01\x00\x41\x00\x0b\x01\x00"))         // element segment
	f.Add([]byte(hdr + "\x00\x0c\x04name\x02\x05\x01\x00\x01\x00\x00")) // local names
	f.Fuzz(func(t *testing.T, b []byte) {
		if v := Prescan(b); v != nil && v.Rule != RuleValidate {
			t.Fatalf("rule %q", v.Rule)
		}
	})
}
