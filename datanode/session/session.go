// Package session registers compact-host in a Milvus 2.6 cluster's etcd as
// a DataNode, the way Milvus's own sessionutil does: a server ID from the
// cluster's shared counter, a JSON session value on a lease kept alive, a
// new registration when the lease is lost, and the key removed on Close.
//
// DataCoord discovers DataNodes by these keys and dials their Address. A
// value it cannot decode makes its service discovery fail, so the value is
// checked here before it is written (see Value.Check).
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver/v4"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// Role is the session's ServerName and key prefix: Milvus's DataNode role.
	Role = "datanode"
	// DefaultMetaRoot is Milvus's default etcd.rootPath/etcd.metaSubPath.
	DefaultMetaRoot = "by-dev/meta"
	// DefaultVersion is the Milvus version advertised by default. DataCoord
	// lists DataNodes with versions >=2.2.3, and the streaming coordinator
	// treats any DataNode below 2.6.0 as an old node that blocks streaming.
	DefaultVersion = "2.6.2"
	// DefaultTTL is Milvus's common.session.ttl.
	DefaultTTL = 10 * time.Second
	// DefaultRequestTimeout bounds each etcd call of the registration.
	DefaultRequestTimeout = 5 * time.Second
)

// minVersion is the lowest Version a worker may advertise (see DefaultVersion).
var minVersion = semver.MustParse("2.6.0")

// Config describes the session to register.
type Config struct {
	// MetaRoot is the cluster's etcd.rootPath joined with etcd.metaSubPath;
	// DefaultMetaRoot when empty.
	MetaRoot string
	// Address is the gRPC host:port DataCoord dials; required.
	Address string
	// Version is the Milvus version advertised, a strict semver (no "v")
	// of at least 2.6.0; DefaultVersion when empty.
	Version string
	// TTL is the lease's time to live, whole seconds; DefaultTTL when zero.
	TTL time.Duration
	// HostName is informational; os.Hostname() when empty.
	HostName string
	// RequestTimeout bounds each etcd call; DefaultRequestTimeout when zero.
	RequestTimeout time.Duration
	// RetryInterval is the pause between attempts to register again after
	// the lease was lost; one second when zero.
	RetryInterval time.Duration
	// OnLost, if set, is called (from the session's goroutine) when the
	// lease is lost and before the session registers again; err says why
	// registering again failed, nil on the first call of each loss.
	OnLost func(err error)
}

// Value is the JSON of a session key: Milvus's sessionutil.SessionRaw, field
// for field, in its order and with its tags (the empty IndexEngineVersion
// structs are still emitted, as Milvus does).
type Value struct {
	ServerID                 int64              `json:"ServerID,omitempty"`
	ServerName               string             `json:"ServerName,omitempty"`
	Address                  string             `json:"Address,omitempty"`
	Exclusive                bool               `json:"Exclusive,omitempty"`
	Stopping                 bool               `json:"Stopping,omitempty"`
	TriggerKill              bool               // no tag in Milvus either
	Version                  string             `json:"Version"`
	IndexEngineVersion       IndexEngineVersion `json:"IndexEngineVersion,omitempty"`
	ScalarIndexEngineVersion IndexEngineVersion `json:"ScalarIndexEngineVersion,omitempty"`
	IndexNonEncoding         bool               `json:"IndexNonEncoding,omitempty"`
	LeaseID                  *int64             `json:"LeaseID,omitempty"`
	HostName                 string             `json:"HostName,omitempty"`
	ServerLabels             map[string]string  `json:"ServerLabels,omitempty"`
}

// IndexEngineVersion mirrors Milvus's type of that name; DataNodes leave it
// empty.
type IndexEngineVersion struct {
	MinimalIndexVersion int32 `json:"MinimalIndexVersion,omitempty"`
	CurrentIndexVersion int32 `json:"CurrentIndexVersion,omitempty"`
}

// Check reports what would make DataCoord refuse or misuse the value:
// a Version that blang/semver (Milvus's parser) rejects or that is below
// 2.6.0, an empty Address (DataCoord stops when it cannot build a client),
// a ServerName other than "datanode", or a non-positive ServerID.
func (v *Value) Check() error {
	ver, err := semver.Parse(v.Version)
	if err != nil {
		return fmt.Errorf("session: Version %q is not a strict semver: %v", v.Version, err)
	}
	if ver.LT(minVersion) {
		return fmt.Errorf("session: Version %q is below %s, which Milvus 2.6 treats as an old DataNode", v.Version, minVersion)
	}
	if v.Address == "" {
		return errors.New("session: empty Address: DataCoord cannot dial the node")
	}
	if v.ServerName != Role {
		return fmt.Errorf("session: ServerName %q, want %q", v.ServerName, Role)
	}
	if v.ServerID <= 0 {
		return fmt.Errorf("session: ServerID %d is not positive", v.ServerID)
	}
	return nil
}

// Session is a registered DataNode session.
type Session struct {
	cli  *clientv3.Client
	cfg  Config
	id   int64
	key  string
	ttl  int64
	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	lease  clientv3.LeaseID
	closed bool
}

// Register takes a server ID from the cluster's counter
// <MetaRoot>/session/id, writes <MetaRoot>/session/datanode-<ID> on a new
// lease and keeps the lease alive until Close. When the lease is lost
// (expired during an etcd outage, or revoked), it registers the same ID
// again on a new lease, retrying until it succeeds or Close is called.
func Register(ctx context.Context, cli *clientv3.Client, cfg Config) (*Session, error) {
	if cfg.MetaRoot == "" {
		cfg.MetaRoot = DefaultMetaRoot
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.HostName == "" {
		cfg.HostName, _ = os.Hostname()
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("session: TTL %v is below etcd's 1 s resolution", cfg.TTL)
	}
	// Check the value before taking an ID, so a bad config uses none up.
	probe := Value{ServerID: 1, ServerName: Role, Address: cfg.Address, Version: cfg.Version}
	if err := probe.Check(); err != nil {
		return nil, err
	}
	s := &Session{cli: cli, cfg: cfg, ttl: int64((cfg.TTL + time.Second - 1) / time.Second), done: make(chan struct{})}
	id, err := s.allocateID(ctx)
	if err != nil {
		return nil, err
	}
	s.id = id
	s.key = path.Join(cfg.MetaRoot, "session", fmt.Sprintf("%s-%d", Role, id))
	loopCtx, stop := context.WithCancel(context.Background())
	alive, err := s.register(ctx, loopCtx)
	if err != nil {
		stop()
		return nil, err
	}
	s.stop = stop
	go s.keepAlive(loopCtx, alive)
	return s, nil
}

// ServerID is the ID taken from the cluster's counter.
func (s *Session) ServerID() int64 { return s.id }

// Key is the session's etcd key.
func (s *Session) Key() string { return s.key }

// LeaseID is the lease the key is on now; it changes when the session
// registers again.
func (s *Session) LeaseID() clientv3.LeaseID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// Close stops keeping the lease alive and revokes it, which deletes the
// key: DataCoord sees the node leave at once instead of after the TTL.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	<-s.done
	lease := s.LeaseID()
	if s.cli.Ctx().Err() != nil {
		// The client would retry until the timeout; the key expires with its TTL.
		return s.errorf("revoking lease %x of %s: the client is closed", lease, s.key)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return s.errorf("revoking lease %x of %s: %w", lease, s.key, err)
	}
	return nil
}

func (s *Session) errorf(format string, args ...any) error {
	return fmt.Errorf("session: etcd %s: %w", strings.Join(s.cli.Endpoints(), ","), fmt.Errorf(format, args...))
}

// allocateID takes the counter's value and stores value+1 with a
// compare-and-swap, as Milvus's getServerIDWithKey does; the counter is
// created as "1" when absent (checkIDExist).
func (s *Session) allocateID(ctx context.Context) (int64, error) {
	key := path.Join(s.cfg.MetaRoot, "session", "id")
	for {
		if err := ctx.Err(); err != nil {
			return 0, s.errorf("allocating a server ID from %s: %w", key, err)
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		_, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.Version(key), "=", 0)).
			Then(clientv3.OpPut(key, "1")).
			Commit()
		if err != nil {
			cancel()
			return 0, s.errorf("creating the server ID counter %s: %w", key, err)
		}
		resp, err := s.cli.Get(rctx, key)
		if err != nil {
			cancel()
			return 0, s.errorf("reading the server ID counter %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			cancel()
			continue // deleted between our create and read
		}
		cur := string(resp.Kvs[0].Value)
		n, err := strconv.ParseInt(cur, 10, 64)
		if err != nil || n <= 0 {
			cancel()
			return 0, s.errorf("server ID counter %s holds %q, not a positive integer", key, cur)
		}
		txn, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.Value(key), "=", cur)).
			Then(clientv3.OpPut(key, strconv.FormatInt(n+1, 10))).
			Commit()
		cancel()
		if err != nil {
			return 0, s.errorf("advancing the server ID counter %s: %w", key, err)
		}
		if txn.Succeeded {
			return n, nil
		}
	}
}

// register grants a lease, writes the key on it if the key is absent, and
// keeps the lease alive until keepCtx ends.
func (s *Session) register(ctx, keepCtx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	grant, err := s.cli.Grant(rctx, s.ttl)
	if err != nil {
		return nil, s.errorf("granting a %d s lease for %s: %w", s.ttl, s.key, err)
	}
	s.mu.Lock()
	s.lease = grant.ID
	s.mu.Unlock()
	lease := int64(grant.ID)
	v := Value{
		ServerID:    s.id,
		ServerName:  Role,
		Address:     s.cfg.Address,
		TriggerKill: true, // as Milvus's DataNode registers
		Version:     s.cfg.Version,
		LeaseID:     &lease,
		HostName:    s.cfg.HostName,
	}
	if err := v.Check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("session: encoding %s: %w", s.key, err)
	}
	txn, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Version(s.key), "=", 0)).
		Then(clientv3.OpPut(s.key, string(b), clientv3.WithLease(grant.ID))).
		Else(clientv3.OpGet(s.key)).
		Commit()
	if err != nil {
		return nil, s.errorf("writing %s: %w", s.key, err)
	}
	if !txn.Succeeded {
		s.cli.Revoke(rctx, grant.ID)
		holder := ""
		if r := txn.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			holder = string(r.Kvs[0].Value)
		}
		return nil, s.errorf("%s already exists (held by %s)", s.key, holder)
	}
	alive, err := s.cli.KeepAlive(keepCtx, grant.ID)
	if err != nil {
		return nil, s.errorf("keeping lease %x of %s alive: %w", grant.ID, s.key, err)
	}
	return alive, nil
}

// keepAlive drains the keep-alive responses; when the channel closes
// without Close, the lease is gone, and the session registers again.
func (s *Session) keepAlive(ctx context.Context, alive <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(s.done)
	for {
		for range alive {
		}
		// A closed client ends the session too: nothing can reach etcd.
		if ctx.Err() != nil || s.cli.Ctx().Err() != nil {
			return
		}
		if s.cfg.OnLost != nil {
			s.cfg.OnLost(nil)
		}
		for {
			// A lease that looks lost here may still hold the key (the
			// client gave up on it while etcd did not); revoking it frees
			// the key for the new registration.
			rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			s.cli.Revoke(rctx, s.LeaseID())
			cancel()
			var err error
			alive, err = s.register(ctx, ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil || s.cli.Ctx().Err() != nil {
				return
			}
			if s.cfg.OnLost != nil {
				s.cfg.OnLost(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.cfg.RetryInterval):
			}
		}
	}
}
