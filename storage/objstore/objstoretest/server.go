package objstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/compacthost/compacthost/storage/objstore"
)

// EnvMinIOBinary names the MinIO server binary a test may start itself
// (scripts/test.sh sets it).
const EnvMinIOBinary = "COMPACT_HOST_TEST_MINIO_BIN"

// Server is a MinIO server of one test's own, on 127.0.0.1, that the test
// can kill and restart (on the same port and data) to stage an outage.
type Server struct {
	t        testing.TB
	bin, dir string
	addr     string
	user     string
	pass     string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartServer starts a private MinIO server and stops it when the test
// ends. Without a binary in COMPACT_HOST_TEST_MINIO_BIN it skips the test,
// or fails it when CI=true.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvMinIOBinary)
	if bin == "" {
		const msg = "no MinIO binary: set " + EnvMinIOBinary + " (./scripts/test.sh does this)"
		if os.Getenv("CI") == "true" {
			t.Fatal("MinIO required in CI: " + msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: addr, user: "t" + hex.EncodeToString(b[:4]), pass: hex.EncodeToString(b[4:])}
	t.Cleanup(s.Kill)
	s.Restart()
	return s
}

// Store returns a store on the server's bucket "outage".
func (s *Server) Store(t testing.TB) *objstore.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A server that answers its health checks may still refuse S3 calls for
	// a moment while it initializes ("Server not initialized yet"), so the
	// first call is retried until the deadline.
	for {
		st, err := objstore.NewS3(ctx, "outage", "", objstore.Options{Endpoint: "http://" + s.addr,
			AccessKey: s.user, SecretKey: s.pass, CreateBucket: true})
		if err == nil {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("objstoretest: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill stops the server at once (SIGKILL); requests to it are refused
// until Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts the server again on the same address and data, and waits
// until it reports its object layer ready (at most 60 s).
func (s *Server) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.addr, filepath.Join(s.dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.user, "MINIO_ROOT_PASSWORD="+s.pass, "MINIO_BROWSER=off")
	log, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Errorf("objstoretest: %v", err)
		return
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Errorf("objstoretest: starting MinIO: %v", err)
		return
	}
	s.cmd = cmd
	if err := waitLive("http://"+s.addr+"/minio/health/cluster", time.Minute); err != nil {
		out, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
		s.t.Errorf("objstoretest: MinIO at %s: %v; its log:\n%s", s.addr, err, out)
	}
}

func waitLive(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
