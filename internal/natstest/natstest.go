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
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserverapi "github.com/nats-io/nats-server/v2/server"
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
	s, err := tryStart(t, cfg)
	if err != nil {
		t.Fatalf("natstest: start server: %v", err)
	}
	return s
}

// tryStart is start that returns the error instead of failing the test.
func tryStart(t testing.TB, cfg natsserver.Config) (*natsserver.Server, error) {
	cfg.Logger = logFor(t, cfg.ServerName)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(s.Shutdown)
	return s, nil
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
	// The ports are chosen before the nodes start (see tryCluster), so
	// another test process may take one in between; that attempt's nodes
	// stop and the cluster starts again on other ports.
	var err error
	for attempt := 0; attempt < clusterAttempts; attempt++ {
		var c *Cluster
		if c, err = tryCluster(t, n); err == nil {
			WaitClusterReady(t, c.Servers)
			return c
		}
		if !errors.Is(err, natsserver.ErrPortInUse) {
			break
		}
	}
	t.Fatalf("natstest: start cluster: %v", err)
	return nil
}

// clusterAttempts bounds NewCluster's starts on other ports after a port
// was taken.
const clusterAttempts = 5

// tryCluster starts n nodes on ports it chooses; on an error it stops those
// it started.
func tryCluster(t testing.TB, n int) (*Cluster, error) {
	// JetStream sizes its meta group from the configured routes, so every
	// node must know every route port before the first starts: reserve
	// free ports, then free them for the nodes. Client ports are fixed too,
	// so a restarted node keeps its URL.
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = FreePort(t)
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[i])
	}
	c := &Cluster{t: t, cfgs: make([]natsserver.Config, n), Servers: make([]*natsserver.Server, n)}
	for i := range c.Servers {
		c.cfgs[i] = natsserver.Config{
			Port:       FreePort(t),
			StoreDir:   t.TempDir(),
			ServerName: fmt.Sprintf("n%d", i+1),
			Cluster:    &natsserver.ClusterConfig{Name: "natstest", Port: ports[i], Routes: routes},
		}
		s, err := tryStart(t, c.cfgs[i])
		if err != nil {
			for _, started := range c.Servers[:i] {
				started.Shutdown()
			}
			return nil, err
		}
		c.Servers[i] = s
	}
	return c, nil
}

// URLs is every node's client URL, comma-separated, for nats.Connect.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(cfg.Port)
	}
	return strings.Join(urls, ",")
}

// Describe says how each running node sees stream: its messages and
// sequences, the leaders it knows, and each consumer's counts on that
// node. Replicas that disagree (a message one node kept that the others
// removed) show side by side; tests print it when a drain does not end.
func (c *Cluster) Describe(stream string) string {
	var out strings.Builder
	for i, s := range c.Servers {
		ns := s.NATS()
		if !ns.Running() {
			fmt.Fprintf(&out, "node %d: stopped\n", i+1)
			continue
		}
		jsz, err := ns.Jsz(&natsserverapi.JSzOptions{Accounts: true, Streams: true, Consumer: true})
		if err != nil {
			fmt.Fprintf(&out, "node %d: %v\n", i+1, err)
			continue
		}
		for _, a := range jsz.AccountDetails {
			for _, sd := range a.Streams {
				if sd.Name != stream {
					continue
				}
				leader := ""
				if sd.Cluster != nil {
					leader = sd.Cluster.Leader
				}
				fmt.Fprintf(&out, "node %d: %s msgs=%d first=%d last=%d leader=%s\n", i+1, stream, sd.State.Msgs, sd.State.FirstSeq, sd.State.LastSeq, leader)
				for _, ci := range sd.Consumer {
					cl := ""
					if ci.Cluster != nil {
						cl = ci.Cluster.Leader
					}
					fmt.Fprintf(&out, "  %s: pending=%d ack_pending=%d waiting=%d delivered=%d ack_floor=%d leader=%s\n",
						ci.Name, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.Delivered.Stream, ci.AckFloor.Stream, cl)
				}
			}
		}
	}
	return out.String()
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

// FreePort returns a port nothing listens on now. It draws from below
// the kernel's ephemeral range (32768 and up on Linux), where the ports
// that servers and clients bound to port 0 come from, so that a port
// reserved here and freed for a node is not handed to another test
// process's listener before the node binds it; the draw is random, so two
// test processes choosing at once rarely pick the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The range FreePort draws from.
const freePortLow, freePortHigh = 20000, 32768

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
