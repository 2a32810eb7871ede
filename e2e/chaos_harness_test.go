package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/natsserver"
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
		cfg: natsserver.Config{Port: freeTCPPort(t), StoreDir: t.TempDir()}}
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
	args := append([]string{"worker", "--nats-url", natsURL, "--api-base", apiBase,
		"--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret,
		"--log-format", "json", "--log-level", "info",
		"--concurrency", strconv.Itoa(o.Concurrency), "--max-in-flight", strconv.Itoa(o.MaxInFlight),
		"--retry-initial", "10ms", "--retry-max", o.RetryMax.String(), "--retry-attempts", strconv.Itoa(o.RetryAttempts),
		"--ack-wait", "3s", "--pinned-ttl", "2s", "--member-ttl", "2s", "--shutdown-timeout", "5s",
		"--http-addr", "off"}, o.Extra...)
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

// stopAll stops the workers with SIGTERM and expects each to exit 0.
func stopAll(t *testing.T, ws ...*workerProc) {
	t.Helper()
	for _, w := range ws {
		if !w.alive() {
			continue
		}
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

// tally is what the sandbox's record says about a set of traces.
type tally struct {
	Delivered       int // distinct expected events delivered
	Duplicates      int // deliveries of an event already delivered
	OrderViolations int // a delivery of an older event after a newer one, or one ahead of a missing one
	Unexpected      int // deliveries of an event not in the traces (a hostile one, say)
	Missing         int // expected events never delivered
	firstProblem    string
}

// count walks each waybill's delivered calls against its trace (the events
// expected to be delivered, in order; events identified by action_msg).
// At least once allows the event just delivered to arrive again; anything
// older arriving after a newer one is an order violation.
func count(sb *sandbox.Server, trs []trace) tally {
	var tl tally
	problem := func(format string, args ...any) {
		if tl.firstProblem == "" {
			tl.firstProblem = fmt.Sprintf(format, args...)
		}
	}
	for _, tr := range trs {
		if len(tr) == 0 {
			continue
		}
		pos := make(map[string]int, len(tr))
		for k, ev := range tr {
			pos[ev.ActionMsg] = k
		}
		seen := make([]bool, len(tr))
		last, distinct := -1, 0 // the newest event delivered so far
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			k, ok := pos[c.ActionMsg]
			switch {
			case !ok:
				tl.Unexpected++
				problem("waybill %s: unexpected delivery %q", tr[0].WaybillID, clipText(c.ActionMsg))
			case seen[k]:
				tl.Duplicates++
				if k != last {
					tl.OrderViolations++
					problem("waybill %s: %q (event %d) delivered again after event %d", tr[0].WaybillID, c.ActionMsg, k, last)
				}
			default:
				seen[k] = true
				distinct++
				if k != last+1 {
					tl.OrderViolations++
					problem("waybill %s: %q (event %d) delivered after event %d", tr[0].WaybillID, c.ActionMsg, k, last)
				}
				last = max(last, k)
			}
		}
		tl.Delivered += distinct
		tl.Missing += len(tr) - distinct
	}
	return tl
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func events(trs []trace) int {
	n := 0
	for _, tr := range trs {
		n += len(tr)
	}
	return n
}

// allDelivered reports whether every event of trs reached the sandbox.
func allDelivered(sb *sandbox.Server, trs []trace) bool {
	tl := count(sb, trs)
	return tl.Missing == 0 && tl.OrderViolations == 0
}

// drained reports whether the trace stream is empty (work-queue retention:
// every event acked) and every event of trs was delivered.
func drained(ctx context.Context, js jetstream.JetStream, sb *sandbox.Server, trs []trace) bool {
	return allDelivered(sb, trs) && streamEmpty(ctx, js)
}

// readDeadLetters reads every record of the dead-letter stream, in stream
// order, the way an operator's tool would (direct gets).
func readDeadLetters(ctx context.Context, t *testing.T, js jetstream.JetStream) []deadletter.Record {
	t.Helper()
	st, err := js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadletter.Record
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("dead letter seq %d: %v", seq, err)
		}
		r, err := deadletter.FromRawMsg(m)
		if err != nil {
			t.Fatalf("dead letter seq %d does not read back: %v", seq, err)
		}
		out = append(out, r)
	}
	return out
}

// figures are what a scenario prints (and appends to the report file).
type figures struct {
	Scenario        string `json:"scenario"`
	Mode            string `json:"mode"`
	Seed            uint64 `json:"seed,omitempty"`
	Events          int    `json:"events"`     // published, hostile ones included
	Valid           int    `json:"valid"`      // events that must be delivered
	Delivered       int    `json:"delivered"`  // distinct valid events delivered
	Duplicates      int    `json:"duplicates"` // repeated deliveries (at least once)
	DeadLettered    int    `json:"deadlettered"`
	OrderViolations int    `json:"order_violations"`
	APICalls        int64  `json:"api_calls"`
	Seconds         int    `json:"seconds"`
	Notes           string `json:"notes,omitempty"`
}

// report logs f and appends it to PATHUPDATE_CHAOS_REPORT when set.
func (f figures) report(t *testing.T) {
	t.Helper()
	f.Mode = bySize("ci", "long")
	t.Logf("figures: events %d, valid %d, delivered %d, duplicates %d, dead-lettered %d, max order violations %d, API calls %d, %ds; %s",
		f.Events, f.Valid, f.Delivered, f.Duplicates, f.DeadLettered, f.OrderViolations, f.APICalls, f.Seconds, f.Notes)
	path := os.Getenv("PATHUPDATE_CHAOS_REPORT")
	if path == "" {
		return
	}
	b, _ := json.Marshal(f)
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("report file: %v", err)
		return
	}
	defer fh.Close()
	_, _ = fh.Write(append(b, '\n'))
}

// verify checks the outcome every scenario shares: every event of trs
// delivered, in order per waybill, nothing unexpected delivered; and
// returns the figures for the caller to complete.
func verify(t *testing.T, name string, sb *sandbox.Server, trs []trace, start time.Time) figures {
	t.Helper()
	tl := count(sb, trs)
	f := figures{Scenario: name, Events: events(trs), Valid: events(trs), Delivered: tl.Delivered,
		Duplicates: tl.Duplicates, OrderViolations: tl.OrderViolations, APICalls: sb.Stats().UpdateCalls,
		Seconds: int(time.Since(start).Round(time.Second).Seconds())}
	if tl.Missing > 0 || tl.OrderViolations > 0 || tl.Unexpected > 0 {
		t.Errorf("%s: %d missing, %d order violations, %d unexpected deliveries; first: %s",
			name, tl.Missing, tl.OrderViolations, tl.Unexpected, tl.firstProblem)
	}
	return f
}

// freeTCPPort returns a port free at the time of asking.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return portOf(l.Addr().String())
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

// sortedKeys is for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
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

// waitDrained waits until every event of trs is delivered and acked; on
// timeout it says what is missing, with the calls of a waybill that lacks
// events.
func waitDrained(ctx context.Context, t *testing.T, js jetstream.JetStream, sb *sandbox.Server, trs []trace) {
	t.Helper()
	for !drained(ctx, js, sb, trs) {
		select {
		case <-ctx.Done():
			tl := count(sb, trs)
			var inStream uint64
			if st, err := js.Stream(context.Background(), pathupdate.TraceStream); err == nil {
				if info, err := st.Info(context.Background()); err == nil {
					inStream = info.State.Msgs
				}
			}
			t.Fatalf("not drained in time: %d of %d events delivered, %d missing, %d order violations, %d still in the trace stream; %s\n%s",
				tl.Delivered, events(trs), tl.Missing, tl.OrderViolations, inStream, tl.firstProblem, explainMissing(sb, trs))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// explainMissing shows the calls of the first waybill with an event not
// delivered.
func explainMissing(sb *sandbox.Server, trs []trace) string {
	for _, tr := range trs {
		delivered := map[string]bool{}
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			delivered[c.ActionMsg] = true
		}
		for _, ev := range tr {
			if !delivered[ev.ActionMsg] {
				return fmt.Sprintf("waybill %s lacks %q; its calls:\n%s", tr[0].WaybillID, ev.ActionMsg, callHistory(sb, tr[0].WaybillID))
			}
		}
	}
	return ""
}

// explainDuplicates shows the calls of up to n waybills that got an event
// twice.
func explainDuplicates(sb *sandbox.Server, trs []trace, n int) string {
	var b strings.Builder
	for _, tr := range trs {
		if n == 0 {
			break
		}
		seen := map[string]bool{}
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			if seen[c.ActionMsg] {
				fmt.Fprintf(&b, "waybill %s got %q twice; its calls:\n%s", tr[0].WaybillID, c.ActionMsg, callHistory(sb, tr[0].WaybillID))
				n--
				break
			}
			seen[c.ActionMsg] = true
		}
	}
	return b.String()
}

func callHistory(sb *sandbox.Server, waybill string) string {
	var b strings.Builder
	for _, c := range sb.Calls(waybill) {
		fmt.Fprintf(&b, "  call %d at %s pid %d: %q -> HTTP %d errcode %d\n", c.Seq, c.At.Format("15:04:05.000"), agentPID(c.UserAgent), c.ActionMsg, c.HTTPStatus, c.ErrCode)
	}
	return b.String()
}
