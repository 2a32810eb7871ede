package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// latencies are end-to-end percentiles in milliseconds.
type latencies struct {
	Samples int     `json:"samples"`
	Missing int     `json:"missing"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
}

// runEndToEnd is scenario 5: a fixed offered load (E2ERate events/s for
// E2EDuration, paced open-loop: each event has its scheduled send time,
// and a late send counts against the pipeline) published with
// Publisher.Publish; latency is the scheduled send time to the sandbox's
// arrival time of the event's first delivered call (Call.At, same clock).
// The reference is a minimal pipeline at the same load on the same
// layout: one raw consumer, each message called in its own goroutine
// (at most Concurrency at once) and acked: no lanes, no order, no
// confirmed acks.
func (r *runner) runEndToEnd(ctx context.Context) (Result, error) {
	o := r.opts
	n := int(float64(o.E2ERate) * o.E2EDuration.Seconds())
	p, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: o.Waybills, Events: n, Seed: o.Seed + 5})
	if err != nil {
		return Result{}, err
	}
	ours, err := r.timeEndToEnd(ctx, p, "ours")
	if err != nil {
		return Result{}, fmt.Errorf("ours: %w", err)
	}
	r.progress("5 e2e ours: %+v", ours)
	ref, err := r.timeEndToEnd(ctx, p, "minimal")
	if err != nil {
		return Result{}, fmt.Errorf("minimal pipeline: %w", err)
	}
	r.progress("5 e2e minimal: %+v", ref)
	capacity := traffic.LittleBound(o.Concurrency, o.Latency.Seconds())
	return Result{
		ID: 5, Name: fmt.Sprintf("end-to-end p99 at %d ev/s", o.E2ERate), Unit: "ms",
		Ours: ours.P99, Reference: ref.P99, RefName: "minimal pipeline p99",
		Ratio: ratio(ours.P99, ref.P99), RatioLowerIsBetter: true, Target: "none set (lower is better)",
		Details: map[string]any{"ours": ours, "minimal": ref, "offered_per_s": o.E2ERate, "seconds": o.E2EDuration.Seconds(),
			"load_share_of_little_bound": float64(o.E2ERate) / capacity},
		Notes: []string{fmt.Sprintf("e2e: publish -> arrival at the sandbox (before its %s latency), at %d ev/s = %.0f%% of the Little bound; ours p50/p99/p999/max %.1f/%.1f/%.1f/%.1f ms, minimal pipeline %.1f/%.1f/%.1f/%.1f ms",
			o.Latency, o.E2ERate, 100*float64(o.E2ERate)/capacity, ours.P50, ours.P99, ours.P999, ours.Max, ref.P50, ref.P99, ref.P999, ref.Max)},
	}, nil
}

func (r *runner) timeEndToEnd(ctx context.Context, p *traffic.Plan, kind string) (latencies, error) {
	e, err := newEnv(ctx, r.opts)
	if err != nil {
		return latencies{}, err
	}
	defer e.close()
	sb, client, err := newSandbox(r.opts.Latency, r.opts.Concurrency)
	if err != nil {
		return latencies{}, err
	}
	defer sb.Close()
	if o := client.UpdatePath(ctx, traffic.Event("WARMUP", 0)); o.Kind != pathupdate.Delivered {
		return latencies{}, fmt.Errorf("warm-up call: %v", o)
	}
	sb.Reset()
	switch kind {
	case "ours":
		w, err := e.startWorker(ctx, client, r.opts)
		if err != nil {
			return latencies{}, err
		}
		defer w.Stop(context.Background())
	default:
		stop, err := minimalPipeline(ctx, e.js, client, r.opts.Concurrency)
		if err != nil {
			return latencies{}, err
		}
		defer stop()
	}
	pub, err := pathupdate.NewPublisher(e.js, pathupdate.PublisherConfig{})
	if err != nil {
		return latencies{}, err
	}
	// Let the consumers settle (a worker's partitions open their gate at
	// once on an empty stream) before the load starts.
	time.Sleep(200 * time.Millisecond)
	scheduled := make([]time.Time, len(p.Items))
	every := time.Second / time.Duration(r.opts.E2ERate)
	start := time.Now()
	for i := range p.Items {
		at := start.Add(time.Duration(i) * every)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		scheduled[i] = at
		if _, err := pub.Publish(ctx, p.Event(i)); err != nil {
			return latencies{}, err
		}
	}
	if _, err := waitDelivered(ctx, sb, p); err != nil {
		return latencies{}, err
	}
	arrivals := p.Arrivals(sb)
	var ds []float64
	l := latencies{}
	for i, a := range arrivals {
		if a.IsZero() {
			l.Missing++
			continue
		}
		ds = append(ds, float64(a.Sub(scheduled[i]))/float64(time.Millisecond))
	}
	slices.Sort(ds)
	l.Samples = len(ds)
	if len(ds) > 0 {
		q := func(f float64) float64 { return ds[int(f*float64(len(ds)-1))] }
		l.P50, l.P99, l.P999, l.Max = q(0.5), q(0.99), q(0.999), ds[len(ds)-1]
	}
	return l, nil
}

// minimalPipeline consumes the whole trace stream with one raw consumer
// through MinimalHandler.
func minimalPipeline(ctx context.Context, js jetstream.JetStream, client *pathupdate.Client, concurrency int) (func(), error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
		Durable: "minimal", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(MinimalHandler(client, concurrency, nil))
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}

// MinimalHandler is the least a consumer can do with a trace event: it
// calls the API for each message in a goroutine of its own, at most
// concurrency at once, and acks after a delivery (delivered, when set,
// is called first with the message and its event), naks otherwise; an undecodable message
// is terminated. No order, no retries, no confirmed acks. Scenario 5's
// minimal pipeline and scenario 14's floor (bench/cmd/pathupdate-floor)
// are both made of it.
func MinimalHandler(client *pathupdate.Client, concurrency int, delivered func(jetstream.Msg, pathupdate.Event)) jetstream.MessageHandler {
	slots := make(chan struct{}, concurrency)
	return func(m jetstream.Msg) {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			ev, err := pathupdate.DecodeEvent(m.Data())
			if err != nil {
				_ = m.Term()
				return
			}
			if o := client.UpdatePath(context.Background(), ev); o.Kind != pathupdate.Delivered {
				_ = m.Nak()
				return
			}
			if delivered != nil {
				delivered(m, ev)
			}
			_ = m.Ack()
		}()
	}
}
