package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
)

// tokenEnv holds the API token itself; there is deliberately no --token
// flag, which would show the secret in ps.
const tokenEnv = "COMPACT_HOST_TOKEN"

// minTokenBytes is the shortest token serve accepts.
const minTokenBytes = 16

// serveSecurity is the authentication and transport serve runs with.
type serveSecurity struct {
	token string      // empty: no authentication
	tls   *tls.Config // nil: plain HTTP
}

// loadServeSecurity reads the token and the TLS key pair and refuses
// combinations that would expose the API: a non-loopback --listen without a
// token needs --insecure-no-auth.
func loadServeSecurity(o serveOptions) (serveSecurity, error) {
	var sec serveSecurity
	usage := func(format string, args ...any) (serveSecurity, error) {
		return serveSecurity{}, withCode(exitUsage, fmt.Errorf(format, args...))
	}
	fromEnv := os.Getenv(tokenEnv)
	switch {
	case o.tokenFile != "" && fromEnv != "":
		return usage("give the token once: --token-file or $%s, not both", tokenEnv)
	case o.tokenFile != "":
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return serveSecurity{}, withCode(fileCode(err), fmt.Errorf("--token-file: %w", err))
		}
		sec.token = strings.TrimSpace(string(b))
		if sec.token == "" {
			return usage("--token-file %s is empty", o.tokenFile)
		}
	default:
		sec.token = strings.TrimSpace(fromEnv)
	}
	if sec.token != "" && len(sec.token) < minTokenBytes {
		return usage("the API token is %d bytes; use at least %d (e.g. openssl rand -hex 32)", len(sec.token), minTokenBytes)
	}
	if sec.token != "" && o.insecureNoAuth {
		return usage("--insecure-no-auth contradicts the token given by --token-file or $%s", tokenEnv)
	}
	if sec.token == "" && !o.insecureNoAuth && !loopbackListen(o.listen) {
		return usage("--listen %s is not a loopback address and no API token is set: give --token-file or $%s, or --insecure-no-auth to serve without authentication", o.listen, tokenEnv)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usage("--tls-cert and --tls-key go together (got only one)")
	}
	if o.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return usage("--tls-cert %s / --tls-key %s: %v", o.tlsCert, o.tlsKey, err)
		}
		sec.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	return sec, nil
}

// loopbackListen reports whether a listen address binds only loopback
// interfaces: localhost or a loopback IP. A host name other than localhost
// and an empty host (every interface) are not.
func loopbackListen(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
