package etcdsync_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctxsync/ctxsync/etcdsync"
	"github.com/ctxsync/ctxsync/etcdsync/internal/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// endpointsEnv names the environment variable that points the tests at an
// etcd cluster of someone else's (comma-separated client URLs) instead of
// the embedded server: etcdsync/compat/run.sh uses it to try the module
// against every etcd server version it claims.
const endpointsEnv = "ETCDSYNC_TEST_ENDPOINTS"

// testServer is the etcd cluster shared by the tests of this package: the
// embedded server TestMain starts, or the cluster that endpointsEnv names.
type testServer struct {
	embedded  *etcdtest.Cluster // nil for an external cluster
	endpoints []string
}

// Endpoints lists the client URLs of the shared cluster.
func (s *testServer) Endpoints() []string { return slices.Clone(s.endpoints) }

// Close stops the embedded server; an external one is not ours to stop.
func (s *testServer) Close() {
	if s.embedded != nil {
		s.embedded.Close()
	}
}

// server is the etcd cluster shared by the tests of this package.
var server *testServer

func TestMain(m *testing.M) {
	if eps := os.Getenv(endpointsEnv); eps != "" {
		server = &testServer{endpoints: strings.Split(eps, ",")}
	} else {
		c, err := etcdtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		server = &testServer{embedded: c, endpoints: c.Endpoints()}
	}
	code := m.Run()
	server.Close()
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions ignores what a closed embedded etcd cluster leaves behind:
// the HTTP connections between its members (etcd's peer transport), which
// embed.Etcd.Close does not close when the member at the other end of a
// connection is in the same process. This package and the etcd client use
// no net/http, so these can only be the server's.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	}
}

// newClient dials endpoints (the shared server by default) and closes the
// client when the test ends.
func newClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli := dialWith(t, endpoints, nil, nil)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// dialWith dials endpoints (the shared server if none) through the gRPC
// interceptors given (nil for none), which tests use to count, fail or
// hold RPCs. The caller closes the client.
func dialWith(t testing.TB, endpoints []string, unary grpc.UnaryClientInterceptor, stream grpc.StreamClientInterceptor) *clientv3.Client {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = server.Endpoints()
	}
	var opts []grpc.DialOption
	if unary != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(unary))
	}
	if stream != nil {
		opts = append(opts, grpc.WithChainStreamInterceptor(stream))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: opts,
	})
	require.NoError(t, err)
	return cli
}

// newSession makes a session on cli under a prefix of the test's own, and
// closes it when the test ends.
func newSession(t testing.TB, cli *clientv3.Client, opts ...etcdsync.Option) *etcdsync.Session {
	t.Helper()
	opts = append([]etcdsync.Option{etcdsync.WithPrefix(testPrefix(t))}, opts...)
	s, err := etcdsync.NewSession(context.Background(), cli, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// testPrefix is a key namespace of the test's own, so tests never share
// keys.
func testPrefix(t testing.TB) string {
	return "/test/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
}

// skipIfExternal skips a test that needs what only an embedded server
// gives (a cluster of its own to crash or fail over, the server's internals
// or its configuration) when the tests run against an external cluster.
func skipIfExternal(t testing.TB, why string) {
	t.Helper()
	if server.embedded == nil {
		t.Skipf("%s is set: %s", endpointsEnv, why)
	}
}

// keysUnder counts the keys under prefix.
func keysUnder(t testing.TB, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}
