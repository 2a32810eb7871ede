package health_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// startServer starts a health.Server on 127.0.0.1:0 with checks.
func startServer(t *testing.T, checks ...health.Check) *health.Server {
	t.Helper()
	s, err := health.NewServer(health.Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Checks: checks})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// waitReady polls /readyz until it answers status with exactly failing
// failing. Polling: readiness is a state, not an event.
func waitReady(t *testing.T, base string, status int, failing []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, rep := readyz(t, base)
		if got == status && slices.Equal(rep.Failing, failing) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %+v after %s, want %d failing %v", got, rep, timeout, status, failing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadyWhileNATSDown: /readyz is 503 naming nats while the server is
// down and the client reconnects, and 200 again once it is back.
func TestReadyWhileNATSDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := t.TempDir()
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: natsserver.RandomPort, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	// Over TCP, as a worker pointed at --nats-url connects, so that it can
	// reconnect to the restarted server.
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	hs := startServer(t, health.NATSConnected(nc.Status), health.Consuming(func() bool { return true }))
	waitReady(t, hs.URL(), 200, nil, 10*time.Second)

	ns.Shutdown()
	waitReady(t, hs.URL(), 503, []string{health.CheckNATS}, 10*time.Second)

	ns2, err := natsserver.Start(ctx, natsserver.Config{Port: port, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns2.Shutdown)
	waitReady(t, hs.URL(), 200, nil, 15*time.Second)
}

// TestReadyWhileBreakerOpen runs a real worker against the sandbox: an API
// outage opens its breaker and /readyz says 503 naming the breaker; once
// the outage ends the breaker closes, /readyz says 200 and the events are
// delivered.
func TestReadyWhileBreakerOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{Seed: 1, AcceptAnyWaybill: true, Faults: sandbox.Faults{OutageUntil: time.Now().Add(time.Hour)}})
	t.Cleanup(sb.Close)
	w := startWorker(t, js, sb)
	consuming := func() bool {
		select {
		case <-w.Stopped():
			return false
		default:
			return true
		}
	}
	hs := startServer(t, health.NATSConnected(nc.Status), health.Consuming(consuming), health.BreakerClosed(w.BreakerState))
	waitReady(t, hs.URL(), 200, nil, 10*time.Second)

	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, wb := range []string{"RDY1", "RDY2", "RDY3"} {
		if _, err := pub.Publish(ctx, pathupdate.Event{Token: "t", WaybillID: wb, ActionTime: 1_767_225_600,
			ActionType: pathupdate.ActionInTransit, ActionMsg: "in transit"}); err != nil {
			t.Fatal(err)
		}
	}
	// Half-open between probes fails too, so the list is stable while
	// the outage lasts.
	waitReady(t, hs.URL(), 503, []string{health.CheckBreaker}, 20*time.Second)

	sb.SetFaults(sandbox.Faults{})
	waitReady(t, hs.URL(), 200, nil, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for sb.Stats().Delivered < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 events delivered after the outage", sb.Stats().Delivered)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, hs.URL(), 503, []string{health.CheckConsuming}, 5*time.Second)
}

// startWorker starts a worker observed by Metrics (as the CLI wires it)
// with quick retries and a quick breaker.
func startWorker(t *testing.T, js jetstream.JetStream, sb *sandbox.Server) *worker.Worker {
	t.Helper()
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{Timeout: 5 * time.Second})
	m, err := metrics.New(metrics.Config{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
		Observer: m,
		Retry:    retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 50},
		Breaker:  retry.BreakerConfig{OpenInitial: 50 * time.Millisecond, OpenMax: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// TestReadyWhileCredentialsRefused: a worker whose AppSecret WeChat refuses
// is not ready from the start, and /readyz says what to fix.
func TestReadyWhileCredentialsRefused(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{Seed: 1, AppSecret: "another-secret"})
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{})
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := startServer(t, health.Credentials(w.Credentials))
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	status, rep := readyz(t, hs.URL())
	if status != 503 || !slices.Equal(rep.Failing, []string{health.CheckCreds}) {
		t.Fatalf("/readyz %d %+v, want 503 failing credentials", status, rep)
	}
	if e := rep.Checks[0].Error; !strings.Contains(e, "40125") || !strings.Contains(e, "--appsecret") {
		t.Fatalf("/readyz says %q, want errcode 40125 and what to fix", e)
	}
}
