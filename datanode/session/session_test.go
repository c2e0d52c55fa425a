package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/compacthost/compacthost/datanode/etcdtest"
	"github.com/compacthost/compacthost/datanode/session"
)

const addr = "127.0.0.1:21121"

// dataCoordDecode decodes a session value as DataCoord's service discovery
// does (sessionutil's Session.UnmarshalJSON, then the ">=2.2.3" range of
// GetSessionsWithVersionRange), plus the empty-Address check that makes
// DataCoord stop (grpcdatanodeclient.NewClient fails on it).
func dataCoordDecode(t *testing.T, b []byte) session.Value {
	t.Helper()
	var v session.Value
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("DataCoord cannot unmarshal %s: %v", b, err)
	}
	ver, err := semver.Parse(v.Version)
	if err != nil {
		t.Fatalf("DataCoord cannot parse Version %q: %v", v.Version, err)
	}
	if !semver.MustParseRange(">=2.2.3")(ver) {
		t.Fatalf("Version %s is outside DataCoord's range >=2.2.3", ver)
	}
	if !semver.MustParseRange(">=2.6.0-dev")(ver) {
		t.Fatalf("Version %s would count as a pre-2.6 DataNode and block streaming", ver)
	}
	if v.Address == "" {
		t.Fatalf("empty Address in %s", b)
	}
	return v
}

func get(t *testing.T, cli *clientv3.Client, key string) (string, int64, bool) {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, false
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].Lease, true
}

func register(t *testing.T, cli *clientv3.Client, cfg session.Config) *session.Session {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = addr
	}
	s, err := session.Register(context.Background(), cli, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestRegisterWritesTheDataNodeSession(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	s := register(t, cli, session.Config{HostName: "worker-1"})

	if s.ServerID() != 1 || s.Key() != "by-dev/meta/session/datanode-1" {
		t.Fatalf("ServerID %d, key %q; want 1 and by-dev/meta/session/datanode-1", s.ServerID(), s.Key())
	}
	if counter, _, _ := get(t, cli, "by-dev/meta/session/id"); counter != "2" {
		t.Fatalf("counter %q after the first registration, want \"2\"", counter)
	}
	val, lease, ok := get(t, cli, s.Key())
	if !ok {
		t.Fatalf("no key %s", s.Key())
	}
	want := fmt.Sprintf(`{"ServerID":1,"ServerName":"datanode","Address":"%s","TriggerKill":true,"Version":"2.6.2",`+
		`"IndexEngineVersion":{},"ScalarIndexEngineVersion":{},"LeaseID":%d,"HostName":"worker-1"}`, addr, int64(s.LeaseID()))
	if val != want {
		t.Fatalf("session value\n got %s\nwant %s", val, want)
	}
	v := dataCoordDecode(t, []byte(val))
	if *v.LeaseID != lease || lease != int64(s.LeaseID()) {
		t.Fatalf("LeaseID in JSON %d, key's lease %d, session's %d", *v.LeaseID, lease, s.LeaseID())
	}
	ttl, err := cli.TimeToLive(context.Background(), s.LeaseID())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 10 || ttl.TTL <= 0 {
		t.Fatalf("lease granted %d s with %d s left; want 10 s granted, some left", ttl.GrantedTTL, ttl.TTL)
	}
}

func TestRegisterContinuesTheClusterCounter(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	if _, err := cli.Put(context.Background(), "root/meta/session/id", "41"); err != nil {
		t.Fatal(err)
	}
	s := register(t, cli, session.Config{MetaRoot: "root/meta"})
	if s.ServerID() != 41 || s.Key() != "root/meta/session/datanode-41" {
		t.Fatalf("ServerID %d, key %q; want 41 and root/meta/session/datanode-41", s.ServerID(), s.Key())
	}
	if counter, _, _ := get(t, cli, "root/meta/session/id"); counter != "42" {
		t.Fatalf("counter %q, want \"42\"", counter)
	}
}

func TestConcurrentRegistrationsGetDistinctIDs(t *testing.T) {
	srv := etcdtest.Start(t)
	const n = 8
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		cli := srv.Client(t) // one client each, as separate workers have
		wg.Go(func() {
			s, err := session.Register(context.Background(), cli, session.Config{Address: fmt.Sprintf("127.0.0.1:%d", 21000+i)})
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { s.Close(context.Background()) })
			ids[i] = s.ServerID()
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, id := range ids {
		if id < 1 || id > n || seen[id] {
			t.Fatalf("IDs %v: want a permutation of 1..%d", ids, n)
		}
		seen[id] = true
	}
	cli := srv.Client(t)
	if counter, _, _ := get(t, cli, "by-dev/meta/session/id"); counter != fmt.Sprint(n+1) {
		t.Fatalf("counter %q, want %d", counter, n+1)
	}
	resp, err := cli.Get(context.Background(), "by-dev/meta/session/datanode", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != n {
		t.Fatalf("%d session keys, want %d", len(resp.Kvs), n)
	}
	for _, kv := range resp.Kvs {
		v := dataCoordDecode(t, kv.Value)
		if want := fmt.Sprintf("by-dev/meta/session/datanode-%d", v.ServerID); string(kv.Key) != want {
			t.Fatalf("key %s holds ServerID %d", kv.Key, v.ServerID)
		}
	}
}

func TestLostLeaseRegistersAgain(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	lost := make(chan error, 10)
	s := register(t, cli, session.Config{TTL: 2 * time.Second, RetryInterval: 50 * time.Millisecond, OnLost: func(err error) { lost <- err }})
	old := s.LeaseID()
	// What an expiry during an etcd outage does, without waiting for it.
	if _, err := cli.Revoke(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if err != nil {
			t.Fatalf("first OnLost call: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnLost not called after the lease was revoked")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		val, lease, ok := get(t, cli, s.Key())
		if ok && lease != int64(old) {
			v := dataCoordDecode(t, []byte(val))
			if v.ServerID != s.ServerID() || *v.LeaseID != lease || lease != int64(s.LeaseID()) {
				t.Fatalf("after re-registration: %s on lease %d, session lease %d", val, lease, s.LeaseID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written again within 10 s of the revocation", s.Key())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if counter, _, _ := get(t, cli, "by-dev/meta/session/id"); counter != "2" {
		t.Fatalf("counter %q: re-registration must keep the server ID", counter)
	}
}

func TestCloseDeletesTheKey(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	s := register(t, cli, session.Config{})
	if _, _, ok := get(t, cli, s.Key()); !ok {
		t.Fatalf("no key %s", s.Key())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := get(t, cli, s.Key()); ok {
		t.Fatalf("%s still present after Close", s.Key())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A worker that dies without Close leaves the key until the lease's TTL
// ends; DataCoord then sees the node leave.
func TestKeyExpiresWhenTheWorkerStopsKeepingAlive(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	workerCli := srv.Client(t)
	s := register(t, workerCli, session.Config{TTL: 2 * time.Second, RetryInterval: time.Hour})
	workerCli.Close() // the keep-alive stops, as when the process is killed
	start := time.Now()
	for {
		if _, _, ok := get(t, cli, s.Key()); !ok {
			break
		}
		if time.Since(start) > 8*time.Second {
			t.Fatalf("%s still present %v after the keep-alive stopped (TTL 2 s)", s.Key(), time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := "session: etcd " + srv.Endpoint + ": revoking lease"
	if err := s.Close(context.Background()); err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "client is closed") {
		t.Fatalf("Close with a closed client: %v, want %q ... client is closed", err, want)
	}
}

func TestRegisterRefusesValuesDataCoordWouldReject(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	for _, tc := range []struct {
		cfg  session.Config
		want string
	}{
		{session.Config{Address: addr, Version: "v2.6.2"}, `Version "v2.6.2" is not a strict semver`},
		{session.Config{Address: addr, Version: "2.6"}, `Version "2.6" is not a strict semver`},
		{session.Config{Address: addr, Version: "2.5.9"}, `Version "2.5.9" is below 2.6.0`},
		{session.Config{}, "empty Address"},
		{session.Config{Address: addr, TTL: 500 * time.Millisecond}, "TTL 500ms is below"},
	} {
		_, err := session.Register(context.Background(), cli, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Register(%+v): %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	// A refused config takes no server ID.
	if _, _, ok := get(t, cli, "by-dev/meta/session/id"); ok {
		t.Fatal("a refused registration created the server ID counter")
	}
}

func TestCheck(t *testing.T) {
	ok := session.Value{ServerID: 7, ServerName: "datanode", Address: addr, Version: "2.6.0-dev"}
	if err := ok.Check(); err == nil || !strings.Contains(err.Error(), "below 2.6.0") {
		t.Fatalf("2.6.0-dev: %v, want below 2.6.0", err)
	}
	ok.Version = "2.6.10"
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*session.Value)
		want string
	}{
		{func(v *session.Value) { v.ServerName = "querynode" }, `ServerName "querynode", want "datanode"`},
		{func(v *session.Value) { v.ServerID = 0 }, "ServerID 0 is not positive"},
		{func(v *session.Value) { v.Version = "" }, `Version "" is not a strict semver`},
	} {
		v := ok
		tc.edit(&v)
		if err := v.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v): %v, want %q", v, err, tc.want)
		}
	}
}

func TestRegisterNamesTheEndpointWhenEtcdIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // a closed port: nothing answers
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, err = session.Register(context.Background(), cli, session.Config{Address: addr, RequestTimeout: time.Second})
	want := "session: etcd " + endpoint + ": creating the server ID counter by-dev/meta/session/id: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Register against a closed port: %v, want an error starting %q", err, want)
	}
}

// DataCoord lists the sessions under the prefix, then watches from the
// next revision: the worker must appear as a PUT and leave as a DELETE
// whose previous value still decodes (DataCoord reads the leaving node's ID
// from it).
func TestDataCoordWatchSeesJoinAndLeave(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	const prefix = "by-dev/meta/session/datanode"
	list, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(list.Header.Revision+1))
	s := register(t, cli, session.Config{})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case resp := <-events:
			if err := resp.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range resp.Events {
				kv := ev.Kv
				if ev.Type == clientv3.EventTypeDelete {
					kv = ev.PrevKv
				}
				v := dataCoordDecode(t, kv.Value)
				got = append(got, fmt.Sprintf("%s %s %d", ev.Type, ev.Kv.Key, v.ServerID))
			}
		case <-ctx.Done():
			t.Fatalf("events %q, want a PUT and a DELETE", got)
		}
	}
	want := []string{"PUT " + s.Key() + " 1", "DELETE " + s.Key() + " 1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
