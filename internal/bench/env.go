package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// env is a fresh JetStream server with its own store, and a client
// connected over TCP as a worker in another process would be.
type env struct {
	dir     string
	ns      *natsserver.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	history *history.Writer // the worker's, when Options.History
	tracing func()          // stops the worker's tracer provider, when Options.Tracing
}

// newEnv starts a server with an empty store under o.TempDir and creates
// the product's streams with their default config but o.Partitions.
func newEnv(ctx context.Context, o Options) (*env, error) {
	dir, err := os.MkdirTemp(o.TempDir, "pathupdate-bench-")
	if err != nil {
		return nil, err
	}
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &env{dir: dir, ns: ns}
	if e.nc, err = nats.Connect(ns.ClientURL(), nats.Name("pathupdate-bench")); err != nil {
		e.close()
		return nil, err
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.close()
		return nil, err
	}
	if err := pathupdate.EnsureStreams(ctx, e.js, pathupdate.StreamsConfig{Partitions: o.Partitions}); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.tracing != nil {
		e.tracing()
	}
	if e.history != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = e.history.Close(ctx)
		cancel()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	e.ns.Shutdown()
	os.RemoveAll(e.dir)
}

// streamMsgs is how many events the trace stream holds: with work-queue
// retention, the ones not acknowledged yet.
func (e *env) streamMsgs(ctx context.Context) (uint64, error) {
	st, err := e.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// waitEmpty polls until the trace stream holds nothing: every event acked.
// There is no event to wait on; 10 ms polls cost the server little and
// bound the timing error.
func (e *env) waitEmpty(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := e.streamMsgs(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events still in %s: %w", n, pathupdate.TraceStream, ctx.Err())
		case <-t.C:
		}
	}
}

// publishPlan stores the plan's events in the stream in the plan's
// order, as a raw publisher with the product's headers does, and checks that the stream stored them all. The
// scenarios are defined by stream positions (a waybill's next event ~200
// positions later, a hot waybill spread through the stream); the
// product's publisher would let a busy waybill's lines trail the others'
// (it publishes one line of a waybill at a time), which would change the
// job the worker is timed on. Scenario 1 times the product's publisher.
func (e *env) publishPlan(ctx context.Context, plan *traffic.Plan) error {
	if err := rawPublish(ctx, e.js, planMsgs(plan), true); err != nil {
		return err
	}
	got, err := e.streamMsgs(ctx)
	if err != nil {
		return err
	}
	if got != uint64(len(plan.Items)) {
		return fmt.Errorf("stream holds %d of the plan's %d events", got, len(plan.Items))
	}
	return nil
}

func (e *env) publishReader(ctx context.Context, r io.Reader, want int) error {
	pub, err := pathupdate.NewPublisher(e.js, pathupdate.PublisherConfig{})
	if err != nil {
		return err
	}
	sum, err := pub.PublishLines(ctx, r, nil)
	if err != nil {
		return err
	}
	if sum.Accepted != want {
		return fmt.Errorf("published %d of %d events (%d duplicates, %d invalid, %d failed: %v)",
			sum.Accepted, want, sum.Duplicates, sum.Invalid, sum.Failed, sum.Errors)
	}
	return nil
}

// startWorker starts a worker wired as `pathupdate worker` wires one
// (package assemble): metrics observer, info-level logger (written
// nowhere), dead-letter writer, default settings but o.Concurrency and
// o.MaxInFlight.
func (e *env) startWorker(ctx context.Context, api worker.Deliverer, o Options) (*worker.Worker, error) {
	log := zerolog.New(io.Discard).Level(zerolog.InfoLevel)
	m, err := metrics.New(metrics.Config{Registry: prometheus.NewRegistry(), Logger: log})
	if err != nil {
		return nil, err
	}
	wcfg := worker.Config{Concurrency: o.Concurrency, MaxInFlight: o.MaxInFlight, Observer: m}
	if o.History {
		if err := history.EnsureStream(ctx, e.js, history.StreamConfig{}); err != nil {
			return nil, err
		}
		if e.history, err = history.NewWriter(e.js, history.WriterConfig{Logger: log, OnWritten: m.HistoryWritten, OnDropped: m.HistoryDropped}); err != nil {
			return nil, err
		}
		wcfg.History = e.history
	}
	if o.Tracing {
		tp, stop, err := startTracing(ctx, o.spans)
		if err != nil {
			return nil, err
		}
		e.tracing, wcfg.TracerProvider = stop, tp
	}
	w, err := assemble.Worker(e.js, assemble.Settings{Deliverer: api, Logger: log, Worker: wcfg})
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		_ = w.Stop(context.Background())
		return nil, err
	}
	return w, nil
}

// newSandbox starts a sandbox that accepts any waybill and answers after
// latency, and a product client for it with a stable access token.
func newSandbox(latency time.Duration, concurrency int) (*sandbox.Server, *pathupdate.Client, error) {
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(latency)}})
	client, err := assemble.Client(assemble.Settings{
		Worker: worker.Config{Concurrency: concurrency}, // the connection pool's size
		Tokens: pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret)}},
		Client: pathupdate.ClientConfig{APIBase: sb.URL},
	})
	if err != nil {
		sb.Close()
		return nil, nil, err
	}
	return sb, client, nil
}

// waitDelivered polls the sandbox until every event of p was delivered at
// least once, and returns when that was first seen.
func waitDelivered(ctx context.Context, sb *sandbox.Server, p *traffic.Plan) (time.Time, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	want := int64(len(p.Items))
	for {
		if sb.Stats().Delivered >= want {
			// Duplicates count too: make sure each event is there.
			if o := p.Check(sb); o.Missing == 0 {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d deliveries: %w", sb.Stats().Delivered, want, ctx.Err())
		case <-t.C:
		}
	}
}

// median of xs (xs is reordered).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
