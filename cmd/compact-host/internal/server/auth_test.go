package server

import (
	"bufio"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testToken = "0123456789abcdef-test-token"

// doAuth sends a request with the given Authorization header (none if empty).
func (h *harness) doAuth(method, path, auth string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	hdr := http.Header{}
	if auth != "" {
		hdr.Set("Authorization", auth)
	}
	return h.doHeader(method, path, hdr, body)
}

func TestBearerToken(t *testing.T) {
	for _, open := range []bool{false, true} {
		h := newHarness(t, Config{Workers: 1, Token: testToken, OpenHealthMetrics: open})
		for _, auth := range []string{"", "Bearer wrong-token-0123456789a", "Bearer " + testToken + "x", "Basic " + testToken, testToken} {
			for _, r := range []struct{ method, path string }{
				{"POST", "/v1/plans"}, {"GET", "/v1/tasks"}, {"GET", "/v1/tasks/abc"}, {"GET", "/v1/plugins"},
			} {
				resp, body := h.doAuth(r.method, r.path, auth, planJSON(t, 1))
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="compact-host"` ||
					!strings.Contains(string(body), "missing or wrong bearer token") {
					t.Fatalf("open=%v %s %s with %q: %d %q %s", open, r.method, r.path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
				}
			}
		}
		for _, path := range []string{"/healthz", "/metrics"} {
			resp, _ := h.doAuth("GET", path, "", nil)
			want := http.StatusUnauthorized
			if open {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("open=%v GET %s without a token: %d, want %d", open, path, resp.StatusCode, want)
			}
			if resp, _ := h.doAuth("GET", path, "Bearer "+testToken, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("open=%v GET %s with the token: %d", open, path, resp.StatusCode)
			}
		}
		resp, body := h.doAuth("POST", "/v1/plans", "bearer  "+testToken+" ", planJSON(t, 1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("submit with the token: %d %s", resp.StatusCode, body)
		}
		<-h.fake.started
		h.fake.release <- nil
	}
}

// TestTokenCompareConstantTime: the token check goes through
// crypto/subtle and compares the presented token with nothing else.
func TestTokenCompareConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "auth.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "tokenOK" {
			fn = d
		}
	}
	if fn == nil {
		t.Fatal("auth.go has no tokenOK")
	}
	subtleCalls := 0
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && x.Name == "subtle" && n.Sel.Name == "ConstantTimeCompare" {
				subtleCalls++
			}
			if x, ok := n.X.(*ast.Ident); ok && (x.Name == "bytes" || x.Name == "strings") && strings.Contains(n.Sel.Name, "Equal") && n.Sel.Name != "EqualFold" {
				t.Errorf("tokenOK compares with %s.%s", x.Name, n.Sel.Name)
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				if lit, ok := n.Y.(*ast.BasicLit); !ok || lit.Value != "1" {
					t.Errorf("tokenOK uses %s outside the ConstantTimeCompare result check", n.Op)
				}
			}
		}
		return true
	})
	if subtleCalls != 1 {
		t.Fatalf("tokenOK calls subtle.ConstantTimeCompare %d times, want 1", subtleCalls)
	}
	want := [32]byte{}
	if tokenOK("Bearer x", want) || tokenOK("", want) {
		t.Fatal("tokenOK accepted a wrong token")
	}
}

// TestSlowBodyCutOff: a client that sends its headers and then trickles
// the body one byte at a time is cut off once BodyTimeout has passed.
func TestSlowBodyCutOff(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	s, err := New(Config{Compactor: newFake(), BodyTimeout: bodyTimeout, ReadHeaderTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /v1/plans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "connection closed: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		answered <- resp.Status + " " + string(b)
	}()
	check := func(got string) {
		took := time.Since(start)
		if took > bodyTimeout+2*time.Second || !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "i/o timeout") {
			t.Fatalf("after %v: %q; want 400 with an i/o timeout soon after %v", took, got, bodyTimeout)
		}
	}
	// Trickle a byte every 100 ms for at most 5 s.
	for i := 0; i < 50; i++ {
		select {
		case got := <-answered:
			check(got)
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write([]byte("{")); err != nil {
			break // the server closed the connection; its answer says why
		}
	}
	select {
	case got := <-answered:
		check(got)
	case <-time.After(time.Second):
		t.Fatalf("a client trickling its body was still connected after %v (body timeout %v)", time.Since(start), bodyTimeout)
	}
}
