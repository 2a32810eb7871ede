package metrics_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/metrics"
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

// run is a worker observed by Metrics, against a real embedded JetStream
// and the sandbox over HTTP, with /metrics served by a health.Server on
// 127.0.0.1:0.
type run struct {
	js      jetstream.JetStream
	sb      *sandbox.Server
	pub     *pathupdate.Publisher
	w       *worker.Worker
	m       *metrics.Metrics
	metrics string // URL of /metrics
}

const testPartitions = 4

func startRun(t *testing.T, sbcfg sandbox.Config) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: testPartitions}); err != nil {
		t.Fatal(err)
	}
	if sbcfg.Seed == 0 {
		sbcfg.Seed = 1
	}
	sb := sandbox.NewServer(sbcfg)
	t.Cleanup(sb.Close)
	api := wechattest.Client(t, sb, pathupdate.ClientConfig{Timeout: 5 * time.Second})
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}

	// The wiring docs/metrics.md tells cli/worker_cmd.go to do.
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{
		Registry:    reg,
		ConsumerLag: metrics.JetStreamLag(js, pathupdate.TraceStream, metrics.PartitionConsumers(worker.ConsumerDefault, testPartitions)),
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := health.NewServer(health.Config{Addr: "127.0.0.1:0", Registry: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Shutdown(context.Background()) })

	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
		Observer: m,
		Retry:    retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 50},
		Breaker:  retry.BreakerConfig{OpenInitial: 50 * time.Millisecond, OpenMax: 500 * time.Millisecond},
		Logger:   testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.SetLoad(func() (int, int) { s := w.Stats(); return s.Held, s.Lanes })
	m.SetPause(w.OperatorPause)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return &run{js: js, sb: sb, pub: pub, w: w, m: m, metrics: hs.URL() + health.PathMetrics}
}

func testLogger(t *testing.T) zerolog.Logger {
	if os.Getenv("PATHUPDATE_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// waitScrape scrapes until cond holds on a scrape, and returns that
// scrape. It polls: the worker offers no event for "the counters reached
// this", and polling /metrics is what Prometheus does anyway.
func (r *run) waitScrape(t *testing.T, what string, timeout time.Duration, cond func(families) bool) families {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f := scrape(t, r.metrics)
		if cond(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled reports whether every event published so far is settled:
// delivered plus dead-lettered reaches n, nothing is held, and the
// consumers (whose counts the server updates a little later) show nothing
// pending.
func settled(n float64) func(families) bool {
	return func(f families) bool {
		ev, _ := f.sum("pathupdate_events_total")
		held, _ := f.sum("pathupdate_held_messages")
		pending, _ := f.sum("pathupdate_consumer_pending")
		acks, _ := f.sum("pathupdate_consumer_ack_pending")
		return ev >= n && held == 0 && pending == 0 && acks == 0
	}
}
