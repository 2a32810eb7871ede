// Package natstest starts real embedded NATS servers with JetStream for the
// tests of every package: one server, or a cluster of several in one
// process. Each test gets its own servers, ports and storage, all removed
// when the test ends.
//
// It must not be imported by non-test code, and it offers no fake of NATS.
package natstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/natsserver"
)

// ClusterReadyTimeout bounds how long StartCluster waits for the
// JetStream meta leader to be elected and known to every node.
const ClusterReadyTimeout = 30 * time.Second

// Start starts a single JetStream server on a random port with its store
// under t.TempDir(), and shuts it down when the test ends. The server's log
// is printed only if the test fails.
func Start(t testing.TB) *natsserver.Server {
	t.Helper()
	return start(t, natsserver.Config{Port: natsserver.RandomPort, StoreDir: t.TempDir()})
}

// StartWithStore starts a single JetStream server like Start, with its
// store in dir: a test shuts it down and starts it again on the same dir to
// see what a restarted process sees.
func StartWithStore(t testing.TB, dir string) *natsserver.Server {
	t.Helper()
	return start(t, natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
}

// start starts a server from cfg with its log kept for the test, and shuts
// it down when the test ends.
func start(t testing.TB, cfg natsserver.Config) *natsserver.Server {
	t.Helper()
	cfg.Logger = logFor(t, cfg.ServerName)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("natstest: start server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect opens an in-process connection to s and a JetStream handle on it,
// both closed when the test ends.
func Connect(t testing.TB, s *natsserver.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := s.Connect(nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// StartCluster starts an n-node JetStream cluster in this process (random
// client ports, one store per node under t.TempDir()) and returns when a
// meta leader is elected and every node knows it. Nodes are shut down when
// the test ends; a test may shut one down earlier to see a failover.
func StartCluster(t testing.TB, n int) []*natsserver.Server {
	t.Helper()
	return NewCluster(t, n).Servers
}

// Cluster is an in-process JetStream cluster whose nodes a test can stop
// and restart with the same ports and store.
type Cluster struct {
	t       testing.TB
	cfgs    []natsserver.Config
	Servers []*natsserver.Server
}

// NewCluster starts an n-node cluster like StartCluster and keeps what it
// needs to restart a node.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartCluster(%d): need at least one node", n)
	}
	// JetStream sizes its meta group from the configured routes, so every
	// node must know every route port before the first starts: reserve
	// free ports, then free them for the nodes. Another process could take
	// one in between; that shows as a port-in-use failure, not a hang.
	// Client ports are fixed too, so a restarted node keeps its URL.
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[i])
	}
	c := &Cluster{t: t, cfgs: make([]natsserver.Config, n), Servers: make([]*natsserver.Server, n)}
	for i := range c.Servers {
		c.cfgs[i] = natsserver.Config{
			Port:       freePort(t),
			StoreDir:   t.TempDir(),
			ServerName: fmt.Sprintf("n%d", i+1),
			Cluster:    &natsserver.ClusterConfig{Name: "natstest", Port: ports[i], Routes: routes},
		}
		c.Servers[i] = start(t, c.cfgs[i])
	}
	WaitClusterReady(t, c.Servers)
	return c
}

// URLs is every node's client URL, comma-separated, for nats.Connect.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(cfg.Port)
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down.
func (c *Cluster) Stop(i int) { c.Servers[i].Shutdown() }

// Restart starts node i again with its ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Servers[i] = start(c.t, c.cfgs[i])
}

// WaitClusterReady waits until one of the running servers is the JetStream
// meta leader, every running server is current with it, and the leader
// sees every running server online (before that, creating a replicated
// stream fails with "no suitable peers"). It polls: the server offers no
// event for it.
func WaitClusterReady(t testing.TB, servers []*natsserver.Server) {
	t.Helper()
	deadline := time.Now().Add(ClusterReadyTimeout)
	for {
		leaders, current, running, peers := 0, 0, 0, 0
		for _, s := range servers {
			ns := s.NATS()
			if !ns.Running() {
				continue
			}
			running++
			if ns.JetStreamIsLeader() {
				leaders++
				peers = len(ns.JetStreamClusterPeers())
			}
			if ns.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == running && peers == running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster not ready after %s: %d meta leaders, %d of %d nodes current, leader sees %d online",
				ClusterReadyTimeout, leaders, current, running, peers)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logFor collects a server's log in memory and prints it if the test fails:
// quiet when all is well, everything at hand when it is not.
func logFor(t testing.TB, name string) zerolog.Logger {
	buf := &SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("natstest: log of server %q:\n%s", name, buf.String())
		}
	})
	return zerolog.New(buf).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a log sink
// for servers, processes and loggers in tests.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// LeakOptions are the goroutines a test binary that runs JetStream servers
// and HTTP clients may leave behind without leaking. There are none today:
// every server, connection, listener and idle HTTP connection a test
// starts is closed by its Cleanup. Name a goroutine here only with the
// exact function it sits in and why it outlives its test; never a place
// where anything may wait (internal/poll.runtime_pollWait is where a
// leaked connection or listener sits). Use them in TestMain:
//
//	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
func LeakOptions() []goleak.Option {
	return nil
}
