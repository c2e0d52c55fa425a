package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// openPaths are served without a token when Config.OpenHealthMetrics is set.
var openPaths = map[string]bool{"/healthz": true, "/metrics": true}

// requireToken answers 401 with a Bearer challenge to every request that
// does not present Config.Token, except the open paths when allowed.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.OpenHealthMetrics && r.Method == http.MethodGet && openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if !tokenOK(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="compact-host"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer <token>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether the Authorization header carries the token whose
// sha256 is want. Both sides are hashed first so the comparison takes the
// same time whatever the presented token's length and content.
func tokenOK(header string, want [sha256.Size]byte) bool {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// bodyDeadline gives each request BodyTimeout to deliver its body, from
// when its handler starts: a client trickling a plan byte by byte gets a
// read error instead of holding a connection and a goroutine forever.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			// Not every ResponseWriter supports deadlines (httptest's
			// recorder does not); the http.Server's ReadTimeout still holds.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}
