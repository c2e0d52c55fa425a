package host

import (
	"context"
	"errors"
	"strings"
	"testing"

	wt "github.com/compacthost/compacthost/host/internal/wasmtest"
)

func newTestRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir
	}
	rt, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func TestAdmitRefusals(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxModuleBytes: 64 << 10, MaxGrant: 16 << 20,
		Pins: map[string]string{"pinned@1": strings.Repeat("ab", 32)}})
	big := tmModule(tmOpts{tag: strings.Repeat("x", 70<<10)})
	onlyV2 := wt.New()
	onlyV2.Memory(1, -1)
	onlyV2.Export("compact_v2_finish", onlyV2.Func(wt.Func{Results: []byte{wt.I32}, Body: wt.I32Const(0)}))
	cases := []struct {
		name, ref string
		wasm      []byte
		rule      string
		detail    string
	}{
		{"oversized", "mix@1.0.0", big, "size-limit", "limit 65536"},
		{"pin", "pinned@1", tmModule(tmOpts{}), "sha256-pin", "does not match the pinned"},
		{"garbage", "mix@1.0.0", []byte("\x00asm\x01\x00\x00\x00\x99junk"), "validation", ""},
		// 20 bytes that would make wazero's decoder allocate 32 GB.
		{"decoder bomb", "mix@1.0.0", []byte("\x00asm\x01\x00\x00\x00\x01\x09\x01\x60\x00\xff\xff\xff\xff\x0f\x7f"), "validation", "results count 4294967295"},
		{"wrong abi import", "mix@1.0.0", tmModule(tmOpts{hostModule: "compact_v2"}), "abi-version", "unsupported ABI version 2"},
		{"wrong abi export", "mix@1.0.0", tmModule(tmOpts{exportPrefix: "compact_v7_"}), "abi-version", "unsupported ABI version 7"},
		{"no abi names", "mix@1.0.0", tmModule(tmOpts{hostModule: "wasi_snapshot_preview1", exportPrefix: "x_"}), "abi-version", "not a compact-host strategy"},
		{"only v2 exports", "mix@1.0.0", onlyV2.Bytes(), "abi-version", "unsupported ABI version 2"},
		{"unknown import module", "mix@1.0.0", tmModule(tmOpts{extraImport: [2]string{"env", "syscall"}}), "import-allowlist", `unknown module "env"`},
		{"unknown host function", "mix@1.0.0", tmModule(tmOpts{extraImport: [2]string{"compact_v1", "exec"}}), "import-allowlist", "unknown host function compact_v1.exec"},
		{"wasi filesystem", "mix@1.0.0", tmModule(tmOpts{extraImport: [2]string{"wasi_snapshot_preview1", "path_open"}}), "import-allowlist", "path_open is not allowed"},
		{"missing export", "mix@1.0.0", tmModule(tmOpts{skipExport: "compact_v1_batch"}), "required-exports", "missing export compact_v1_batch"},
		{"min memory", "mix@1.0.0", tmModule(tmOpts{minPages: 300}), "min-memory", "300 pages"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := rt.Admit(context.Background(), c.ref, c.wasm)
			if err == nil {
				p.Release()
				t.Fatal("admitted")
			}
			var ae *AdmissionError
			if !errors.As(err, &ae) || !errors.Is(err, ErrRefused) {
				t.Fatalf("error %T %v is not an AdmissionError", err, err)
			}
			if ae.Rule != c.rule || !strings.Contains(ae.Detail, c.detail) {
				t.Fatalf("rule %q detail %q; want rule %q containing %q", ae.Rule, ae.Detail, c.rule, c.detail)
			}
			if ae.Plugin.Ref() != c.ref || len(ae.Plugin.SHA256) != 64 || !strings.Contains(err.Error(), c.ref+" (sha256 "+ae.Plugin.ShortSHA()+")") {
				t.Fatalf("error does not name the plugin: %v", err)
			}
		})
	}
}

func TestAdmitGoodAndBadRef(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	p, err := rt.Admit(context.Background(), "mix@1.0.0", tmModule(tmOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if p.ID().Name != "mix" || p.ID().Version != "1.0.0" || p.MinMemory() != 2*65536 {
		t.Fatalf("plugin %+v min %d", p.ID(), p.MinMemory())
	}
	for _, ref := range []string{"mix", "@1", "mix@", "a/b@1", "a@1@2"} {
		if _, err := rt.Admit(context.Background(), ref, tmModule(tmOpts{})); err == nil || !strings.Contains(err.Error(), "not name@version") {
			t.Errorf("ref %q: %v", ref, err)
		}
	}
}
