// Package etcdtest starts real etcd servers inside a test binary or an
// example program: one member, or a cluster of three for leader failover,
// on 127.0.0.1 with ports the kernel picks, and a TCP proxy that can cut the
// network between one client and the server. Nothing here mocks etcd.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Member is one running etcd server.
type Member struct {
	Name string
	Etcd *embed.Etcd
	dir  string
	cfg  *embed.Config
	stop sync.Once
}

// ClientURL is the address a client dials to reach m.
func (m *Member) ClientURL() string { return "http://" + m.Etcd.Clients[0].Addr().String() }

// Stop shuts m down (its data directory stays, so a cluster keeps its
// quorum arithmetic). Stopping twice does no harm.
func (m *Member) Stop() {
	m.stop.Do(m.Etcd.Close)
}

// Cluster is a set of etcd members that form one cluster.
type Cluster struct {
	Members []*Member
}

// Endpoints lists every member's client URL.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL()
	}
	return eps
}

// Leader returns the member that leads now, or nil if none does.
func (c *Cluster) Leader() *Member {
	for _, m := range c.Members {
		s := m.Etcd.Server
		if s != nil && uint64(s.Lead()) == uint64(s.MemberID()) {
			select {
			case <-s.StopNotify():
				continue
			default:
			}
			return m
		}
	}
	return nil
}

// Close stops every member and removes their data.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		m.Stop()
		_ = os.RemoveAll(m.dir)
	}
}

// Start runs a single-member cluster. Its client and peer ports are chosen
// by the kernel (port 0), so tests never collide on a port.
func Start() (*Cluster, error) {
	cfg := baseConfig("solo")
	u := mustURL("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{u}, []url.URL{u}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{u}, []url.URL{u}
	cfg.InitialCluster = "solo=" + u.String()
	m, err := startMember(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Members: []*Member{m}}, nil
}

// StartCluster runs a cluster of n members. A member's peer URL must be
// named in every member's initial configuration before any of them starts,
// so the ports are reserved first (listen on port 0, note the port, close):
// another process could take one in between, so a failed start is retried
// with fresh ports.
func StartCluster(n int) (*Cluster, error) {
	var lastErr error
	for range 5 {
		c, err := startCluster(n)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startCluster(n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfg := baseConfig(name)
		cu := mustURL(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]))
		pu := mustURL(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfgs[i] = cfg
		initial = append(initial, name+"="+pu.String())
	}
	c := &Cluster{}
	errs := make([]error, n)
	members := make([]*Member, n)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		// Members of a new cluster wait for each other's votes, so they
		// must start together.
		wg.Go(func() { members[i], errs[i] = startMember(cfg) })
	}
	wg.Wait()
	for _, m := range members {
		if m != nil {
			c.Members = append(c.Members, m)
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func baseConfig(name string) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = name
	// A short tick lets a single member elect itself at once and a
	// cluster fail over within a fraction of a second.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	// Tests only: no fsync, which is what makes a test server fast.
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.InitialClusterToken = "etcdtest"
	// No metrics listener: it would need a port of its own.
	cfg.ListenMetricsUrls = nil
	return cfg
}

func startMember(cfg *embed.Config) (*Member, error) {
	dir, err := os.MkdirTemp("", "etcdtest-"+cfg.Name+"-")
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("etcdtest: start %s: %w", cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("etcdtest: %s failed: %w", cfg.Name, err)
	case <-time.After(60 * time.Second):
		e.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("etcdtest: %s not ready within 60s", cfg.Name)
	}
	return &Member{Name: cfg.Name, Etcd: e, dir: dir, cfg: cfg}, nil
}

func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}
