// Package etcdtest starts a private etcd server for one test, on 127.0.0.1,
// the way objstoretest starts MinIO.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EnvEtcdBinary names the etcd server binary the tests start
// (scripts/test.sh sets it).
const EnvEtcdBinary = "COMPACT_HOST_TEST_ETCD_BIN"

// Server is an etcd server of one test's own, with a temporary data
// directory; it is stopped when the test ends.
type Server struct {
	// Endpoint is the client URL, http://127.0.0.1:PORT.
	Endpoint string

	dir string
	cmd *exec.Cmd
}

// Start starts a private etcd server and waits until it answers (at most
// 30 s). Without a binary in COMPACT_HOST_TEST_ETCD_BIN it skips the test,
// or fails it when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvEtcdBinary)
	if bin == "" {
		const msg = "no etcd binary: set " + EnvEtcdBinary + " (./scripts/test.sh does this)"
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd required in CI: " + msg)
		}
		t.Skip(msg)
	}
	// Another process may take a port between our probe and etcd's bind;
	// etcd then exits, and a new pair of ports is tried.
	var lastErr error
	for range 3 {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("etcdtest: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	client, err := freeAddr()
	if err != nil {
		return nil, err
	}
	peer, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	s := &Server{Endpoint: "http://" + client, dir: dir}
	peerURL := "http://" + peer
	s.cmd = exec.Command(bin,
		"--name", "test",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", s.Endpoint,
		"--advertise-client-urls", s.Endpoint,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL,
		"--log-level", "warn",
	)
	logPath := filepath.Join(dir, "etcd.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-exited
	})
	if err := waitReady(s.Endpoint, exited, 30*time.Second); err != nil {
		s.cmd.Process.Kill()
		<-exited
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("etcd at %s: %v; its log:\n%s", s.Endpoint, err, out)
	}
	return s, nil
}

// Client returns a client of the server, closed when the test ends. Its
// logger is silent: the client's retry warnings would bury test output.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcdtest: client of %s: %v", s.Endpoint, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the server with a read until it answers, the process
// exits, or the limit passes.
func waitReady(endpoint string, exited <-chan struct{}, limit time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
