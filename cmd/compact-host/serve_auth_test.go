package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compacthost/compacthost/cmd/compact-host/internal/server"
)

const serveTestToken = "serve-test-token-0123456789abcdef"

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "compact-host test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// genSmall writes a one-segment collection and returns its store and mix plan.
func genSmall(t *testing.T, dir string) (store string, mixPlan []byte) {
	t.Helper()
	store, plans := filepath.Join(dir, "data"), filepath.Join(dir, "plans")
	if r := runCLI(t, "gen", "--storage", store, "--plans", plans, "--segments", "1", "--rows", "300", "--dim", "4"); r.code != 0 {
		t.Fatalf("gen: exit %d: %s", r.code, r.stderr)
	}
	mixPlan, err := os.ReadFile(filepath.Join(plans, "mix-plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	return store, mixPlan
}

// pluginDir returns a directory holding the bundled mix strategy as mix@1.0.0.wasm.
func pluginDir(t *testing.T, dir string) string {
	t.Helper()
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(mixWasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "mix@1.0.0.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return plugins
}

// TestServeTokenAndTLS: serve over HTTPS with a token answers 401 without
// it and 202 with it, keeps /healthz and /metrics open with
// --open-health-metrics, and the task record names the plugin that ran it.
func TestServeTokenAndTLS(t *testing.T) {
	dir := t.TempDir()
	store, mixPlan := genSmall(t, dir)
	plugins := pluginDir(t, dir)
	certFile, keyFile, pool := selfSignedCert(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(serveTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p := startServeWith(t, &serveProc{client: client, token: serveTestToken}, nil, "--storage", store, "--plugins", plugins,
		"--tls-cert", certFile, "--tls-key", keyFile, "--token-file", tokenFile, "--open-health-metrics")
	if !strings.HasPrefix(p.base, "https://127.0.0.1:") {
		t.Fatalf("base %s", p.base)
	}
	if s := p.logged("serving"); len(s) != 1 || s[0]["tls"] != true || s[0]["auth"] != true {
		t.Fatalf("serving line %v", s)
	}

	p.token = ""
	code, body := p.request(t, "POST", "/v1/plans", "application/json", mixPlan)
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "missing or wrong bearer token") {
		t.Fatalf("submit without a token: %d %s", code, body)
	}
	if code, _ := p.request(t, "GET", "/v1/plugins", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("plugins without a token: %d", code)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		if code, _ := p.request(t, "GET", path, "", nil); code != http.StatusOK {
			t.Fatalf("%s without a token and --open-health-metrics: %d", path, code)
		}
	}
	p.token = serveTestToken
	v := p.finishPlan(t, "application/json", mixPlan)
	var pl server.PluginList
	p.getJSON(t, "/v1/plugins", &pl)
	if v.State != server.StateSucceeded || v.Plugin == nil || len(pl.Plugins) != 1 ||
		*v.Plugin != (server.PluginRef{Name: "mix", Version: "1.0.0", SHA256: pl.Plugins[0].SHA256}) || len(v.Plugin.SHA256) != 64 {
		t.Fatalf("task %+v (plugin %+v); plugins %+v", v, v.Plugin, pl.Plugins)
	}

	// Plain HTTP to the TLS port gets no API.
	resp, err := http.Get("http" + strings.TrimPrefix(p.base, "https") + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

// TestServeRollsBackFailingPlugin: a new mix version that fails every task
// is rolled back after --rollback-failures tasks; /v1/plugins and /metrics
// show it refused, and the next task runs on the previous version.
func TestServeRollsBackFailingPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm strategy")
	}
	dir := t.TempDir()
	store, mixPlan := genSmall(t, dir)
	plugins := pluginDir(t, dir)
	buildWasm(t, "./testdata/mixnext", filepath.Join(plugins, "mix@1.1.0.wasm"), "-X main.version=1.1.0 -X main.broken=yes")
	p := startServe(t, "--storage", store, "--plugins", plugins, "--rollback-failures", "2", "--rollback-window", "5")

	for i := 0; i < 2; i++ {
		v := p.finishPlan(t, "application/json", mixPlan)
		if v.State != server.StateFailed || v.Cause != "guest_failed" || v.Plugin == nil || v.Plugin.Version != "1.1.0" ||
			!strings.Contains(v.Error, "mixnext 1.1.0 is a broken build") {
			t.Fatalf("task %d on the broken version: %+v (plugin %+v)", i, v, v.Plugin)
		}
	}
	var pl server.PluginList
	p.getJSON(t, "/v1/plugins", &pl)
	state := map[string]server.PluginView{}
	for _, e := range pl.Plugins {
		state[e.File] = e
	}
	bad, good := state["mix@1.1.0.wasm"], state["mix@1.0.0.wasm"]
	if bad.State != "refused" || bad.Active || !strings.Contains(bad.Error, "rolled back after 2 consecutive strategy failures in its first 2 tasks") ||
		good.State != "active" {
		t.Fatalf("plugins after rollback: %+v", pl.Plugins)
	}
	m := p.scrape(t)
	if m["compact_host_plugin_rollbacks_total"] != 1 || m[`compact_host_plugins{status="refused"}`] != 1 || m[`compact_host_plugins{status="active"}`] != 1 {
		t.Fatalf("metrics after rollback: rollbacks %v, refused %v, active %v", m["compact_host_plugin_rollbacks_total"],
			m[`compact_host_plugins{status="refused"}`], m[`compact_host_plugins{status="active"}`])
	}
	if w := p.logged("plugin rolled back"); len(w) != 1 || w[0]["@level"] != "warn" || !strings.HasPrefix(w[0]["serving"].(string), "mix@1.0.0 ") {
		t.Fatalf("rollback log: %v", w)
	}
	v, _ := p.runPlan(t, "application/json", mixPlan)
	if v.Plugin == nil || v.Plugin.Version != "1.0.0" {
		t.Fatalf("task after rollback ran on %+v", v.Plugin)
	}
}
