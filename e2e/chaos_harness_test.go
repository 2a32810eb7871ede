package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// The chaos suite (chaos_*_test.go) runs the real binary against a real
// nats-server embedded in this process (clients reach it over TCP) and the
// sandbox, breaks one thing at a time, and checks the outcome from the
// sandbox's record and the streams. Its default sizes keep the package
// within a few minutes on two cores (CI runs it with -race); `make chaos`
// sets PATHUPDATE_CHAOS=long for bigger runs, longer outages and more
// kills. PATHUPDATE_CHAOS_SEED repeats a run's random choices;
// PATHUPDATE_CHAOS_REPORT names a file that gets one JSON line of figures
// per scenario (docs/reliability.md is written from it).

// chaosLong reports whether the long mode was asked for.
func chaosLong() bool { return os.Getenv("PATHUPDATE_CHAOS") == "long" }

// bySize is short in the default (CI) mode, long under PATHUPDATE_CHAOS=long.
func bySize[T any](short, long T) T {
	if chaosLong() {
		return long
	}
	return short
}

// chaosSeed is PATHUPDATE_CHAOS_SEED, or a fresh seed; the test logs it so
// that a failing run's choices can be repeated.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PATHUPDATE_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PATHUPDATE_CHAOS_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	t.Logf("seed %d (repeat with PATHUPDATE_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// lockedRand is a seeded source shared by a scenario's goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))}
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// between returns a duration uniformly in [lo, hi).
func (l *lockedRand) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(l.Float64()*float64(hi-lo))
}

// natsNode is one embedded JetStream server that a scenario can shut down
// and start again on the same port and store, as an operator restarting
// nats-server would.
type natsNode struct {
	t   testing.TB
	cfg natsserver.Config
	log *natstest.SyncBuffer

	mu  sync.Mutex
	srv *natsserver.Server
}

func startNode(t testing.TB) *natsNode {
	t.Helper()
	n := &natsNode{t: t, log: &natstest.SyncBuffer{},
		cfg: natsserver.Config{Port: natstest.FreePort(t), StoreDir: t.TempDir()}}
	n.cfg.Logger = zerolog.New(n.log).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	n.Restart()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nats-server log (tail):\n%s", tail(n.log.String(), 30))
		}
	})
	return n
}

// URL is the client URL, the same across restarts.
func (n *natsNode) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.cfg.Port) }

// Stop shuts the server down and waits until it has stopped.
func (n *natsNode) Stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
	}
}

// Restart starts the server (again) with its port and store.
func (n *natsNode) Restart() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, n.cfg)
	if err != nil {
		n.t.Fatalf("start nats-server on port %d: %v", n.cfg.Port, err)
	}
	n.mu.Lock()
	n.srv = s
	n.mu.Unlock()
}

// connectTCP connects over TCP the way another process would, reconnecting
// for as long as the test runs; urls may list several servers.
func connectTCP(t testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name(t.Name()), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(false))
	if err != nil {
		t.Fatalf("connect to %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// workerOpts are the settings a scenario gives its worker processes; zero
// fields get short timings so that takeovers happen in seconds.
type workerOpts struct {
	Concurrency   int           // default 8
	MaxInFlight   int           // default 64
	RetryAttempts int           // default 100: a scenario about a budget sets its own
	RetryMax      time.Duration // default 200ms
	NoCredentials bool          // no --appid/--appsecret (--token-source none in Extra)
	Extra         []string
}

// startChaosWorker starts `pathupdate worker` against natsURL, calling the
// API at apiBase (the sandbox, or a proxy in front of it).
func startChaosWorker(t *testing.T, natsURL, apiBase string, o workerOpts) *workerProc {
	t.Helper()
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 64
	}
	if o.RetryAttempts == 0 {
		o.RetryAttempts = 100
	}
	if o.RetryMax == 0 {
		o.RetryMax = 200 * time.Millisecond
	}
	args := []string{"worker", "--nats-url", natsURL, "--api-base", apiBase}
	if !o.NoCredentials {
		args = append(args, "--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret)
	}
	args = append(append(args, "--log-format", "json", "--log-level", logLevel(),
		"--concurrency", strconv.Itoa(o.Concurrency), "--max-in-flight", strconv.Itoa(o.MaxInFlight),
		"--retry-initial", "10ms", "--retry-max", o.RetryMax.String(), "--retry-attempts", strconv.Itoa(o.RetryAttempts),
		"--ack-wait", "3s", "--pinned-ttl", "2s", "--member-ttl", "2s", "--shutdown-timeout", "5s",
		"--http-addr", "off"), o.Extra...)
	p := &workerProc{cmd: exec.Command(binary, args...), out: &natstest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if dir := os.Getenv("PATHUPDATE_E2E_LOGS"); dir != "" {
			_ = os.WriteFile(fmt.Sprintf("%s/%s-worker-%d.log", dir, strings.ReplaceAll(t.Name(), "/", "_"), p.cmd.Process.Pid), []byte(p.out.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("worker pid %d log (tail):\n%s", p.cmd.Process.Pid, tail(p.out.String(), 15))
		}
	})
	return p
}

// logLevel is the chaos workers' --log-level: PATHUPDATE_E2E_LOG_LEVEL
// (trace logs every delivery a partition receives, with PATHUPDATE_E2E_LOGS
// to keep the logs), or info.
func logLevel() string {
	if l := os.Getenv("PATHUPDATE_E2E_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// alive reports whether the process still runs.
func (p *workerProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// requireHealthy fails the test if the worker exited or its log shows a
// panic or a fatal runtime error.
func requireHealthy(t *testing.T, p *workerProc) {
	t.Helper()
	if !p.alive() {
		t.Errorf("worker pid %d exited (%v); log tail:\n%s", p.cmd.Process.Pid, p.err, tail(p.out.String(), 20))
		return
	}
	if log := p.out.String(); strings.Contains(log, "panic:") || strings.Contains(log, "fatal error:") {
		t.Errorf("worker pid %d log shows a crash:\n%s", p.cmd.Process.Pid, tail(log, 40))
	}
}

// stopAll stops the workers with SIGTERM and expects each to exit 0. A
// worker is given the time to start first: before the Go runtime hands
// SIGTERM to the program, it ends the process like any other.
func stopAll(t *testing.T, ws ...*workerProc) {
	t.Helper()
	for _, w := range ws {
		if !w.alive() {
			continue
		}
		waitUntil(t, fmt.Sprintf("worker pid %d started", w.cmd.Process.Pid), 30*time.Second, func() bool {
			return strings.Contains(w.out.String(), "worker started") || !w.alive()
		})
		if code := w.term(t); code != 0 {
			t.Errorf("worker pid %d: exit %d after SIGTERM, want 0; log tail:\n%s", w.cmd.Process.Pid, code, tail(w.out.String(), 20))
		}
	}
}

// feeder publishes traces while a scenario breaks things: step j of every
// waybill, each publish waiting for its PubAck and tried again until it is
// acknowledged (what a careful producer does), before step j+1 of any, so
// that every waybill's events enter the stream in order. Retries keep the
// event's content Nats-Msg-Id, so one that was stored although its PubAck
// was lost is stored once.
type feeder struct {
	done      chan struct{}
	published atomic.Int64
	failures  atomic.Int64 // publish attempts that got an error
}

func feed(ctx context.Context, t *testing.T, js jetstream.JetStream, trs []trace, pace time.Duration) *feeder {
	t.Helper()
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{done: make(chan struct{})}
	steps := 0
	for _, tr := range trs {
		steps = max(steps, len(tr))
	}
	go func() {
		defer close(f.done)
		const publishers = 16
		for j := range steps {
			var wg sync.WaitGroup
			for g := range publishers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < len(trs); i += publishers {
						if j >= len(trs[i]) {
							continue
						}
						for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
							_, err := pub.Publish(ctx, trs[i][j])
							if err == nil {
								f.published.Add(1)
								break
							}
							f.failures.Add(1)
							select {
							case <-ctx.Done():
								return
							case <-time.After(delay):
							}
						}
					}
				}()
			}
			wg.Wait()
			select {
			case <-ctx.Done():
				return
			case <-time.After(pace):
			}
		}
	}()
	return f
}

// wait waits until every event is published.
func (f *feeder) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(within):
		t.Fatalf("publishing not done within %s: %d published, %d failed attempts", within, f.published.Load(), f.failures.Load())
	}
}

// waitUntil polls cond (there is no event to wait on: the state is in
// other processes) until it holds or within has passed.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rig is one scenario's world: a nats-server of its own, the streams, a
// sandbox, and a TCP connection for the test's publishing and reading.
type rig struct {
	node *natsNode
	nc   *nats.Conn
	js   jetstream.JetStream
	sb   *sandbox.Server
	rng  *lockedRand
	seed uint64
	t0   time.Time
}

func newRig(t *testing.T, sbcfg sandbox.Config, scfg pathupdate.StreamsConfig) *rig {
	t.Helper()
	r := &rig{t0: time.Now(), node: startNode(t)}
	r.seed = chaosSeed(t)
	r.rng = newLockedRand(r.seed)
	r.nc, r.js = connectTCP(t, r.node.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pathupdate.EnsureStreams(ctx, r.js, scfg); err != nil {
		t.Fatal(err)
	}
	if sbcfg.Seed == 0 {
		sbcfg.Seed = int64(r.seed & (1<<62 - 1))
	}
	r.sb = sandbox.NewServer(sbcfg)
	t.Cleanup(r.sb.Close)
	return r
}
