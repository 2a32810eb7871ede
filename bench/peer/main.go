// Command peer is the peer of pathupdate's benchmark (scenario 7): the
// latency-bound delivery job done the way a Go team would commonly build
// it without pathupdate — github.com/ThreeDotsLabs/watermill's router,
// its NATS JetStream subscriber (watermill-nats/v2 pkg/nats, configured as
// its documentation shows, with several subscribers in a queue group) and
// watermill's Retry middleware — calling logistics.updatePath with
// pathupdate's own client against the same sandbox, on the same events
// (internal/bench/traffic, same seed). It prints one JSON object (bench.PeerRun).
//
// It lives in its own Go module so the product's go.mod never gains
// watermill. It measures; it does not fix what it finds (a queue group
// of several subscribers reorders a waybill's events: counted, not fixed).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/internal/bench/traffic"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// topic is the watermill topic: with the default subject calculator it
// is the stream's name and its only subject.
const topic = "logistics_trace"

// result matches bench.PeerRun.
type result struct {
	Events      int           `json:"events"`
	Seconds     float64       `json:"seconds"`
	Rate        float64       `json:"events_per_s"`
	Order       traffic.Order `json:"order"`
	Subscribers int           `json:"subscribers"`
	APICalls    int64         `json:"api_calls"`
	Config      string        `json:"config"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		waybills    = flag.Int("waybills", 10_000, "waybill universe")
		events      = flag.Int("events", 50_000, "events in all")
		seed        = flag.Uint64("seed", 1, "traffic seed (the harness passes its own)")
		latency     = flag.Duration("latency", 20*time.Millisecond, "the sandbox's latency")
		subscribers = flag.Int("subscribers", 64, "watermill SubscribersCount (the harness passes the worker's concurrency)")
		timeout     = flag.Duration("timeout", 5*time.Minute, "give up after this long")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	plan, err := traffic.New(traffic.Spec{Shape: traffic.Uniform, Waybills: *waybills, Events: *events, Seed: *seed})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pathupdate-peer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(*latency)}})
	defer sb.Close()
	client, err := newClient(sb.URL)
	if err != nil {
		return err
	}
	logger := watermill.NopLogger{}
	jsConfig := wmnats.JetStreamConfig{
		AutoProvision:    true,
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
		DurablePrefix:    "pathupdate",
	}

	// Publish the plan as a watermill producer would (not timed).
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{URL: ns.ClientURL(), Marshaler: &wmnats.NATSMarshaler{}, JetStream: jsConfig}, logger)
	if err != nil {
		return err
	}
	for i := range plan.Items {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), plan.Event(i).Encode())); err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	if err := pub.Close(); err != nil {
		return err
	}
	// The first call fetches the access token; do it before the clock
	// starts, as the harness does for pathupdate.
	if o := client.UpdatePath(ctx, traffic.Event("WARMUP", 0)); o.Kind != pathupdate.Delivered {
		return fmt.Errorf("warm-up call: %v", o)
	}
	sb.Reset()

	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              ns.ClientURL(),
		QueueGroupPrefix: "pathupdate",
		SubscribersCount: *subscribers,
		CloseTimeout:     30 * time.Second,
		AckWaitTimeout:   30 * time.Second,
		Unmarshaler:      &wmnats.NATSMarshaler{},
		JetStream:        jsConfig,
	}, logger)
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2, Logger: logger}
	router.AddMiddleware(retry.Middleware, middleware.Recoverer)
	router.AddConsumerHandler("updatePath", topic, sub, func(msg *message.Message) error {
		ev, err := pathupdate.DecodeEvent(msg.Payload)
		if err != nil {
			return nil // a poison message: drop it (no dead letter here)
		}
		switch o := client.UpdatePath(msg.Context(), ev); o.Kind {
		case pathupdate.Delivered, pathupdate.Rejected:
			return nil
		default:
			return errors.New(o.String()) // Retry middleware, then Nack
		}
	})

	start := time.Now()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	done, err := waitDelivered(ctx, sb, plan, routerDone)
	if err != nil {
		return err
	}
	took := done.Sub(start)
	if err := router.Close(); err != nil {
		return err
	}
	res := result{
		Events: len(plan.Items), Seconds: took.Seconds(), Rate: float64(len(plan.Items)) / took.Seconds(),
		Order: plan.Check(sb), Subscribers: *subscribers, APICalls: sb.Stats().UpdateCalls,
		Config: fmt.Sprintf("watermill %s router, watermill-nats/v2 JetStream subscriber (push, queue group, durable, %d subscribers, AckSync), Retry{MaxRetries 5, 100ms x2 up to 5s}, Recoverer",
			"v1.5.1", *subscribers),
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func newClient(base string) (*pathupdate.Client, error) {
	hc := pathupdate.NewHTTPClient(pathupdate.DefaultHTTPTimeout)
	tokens, err := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{APIBase: base, AppID: sandbox.DefaultAppID,
		AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret), HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	return pathupdate.NewClient(pathupdate.ClientConfig{APIBase: base, Tokens: tokens, HTTPClient: hc})
}

// waitDelivered polls the sandbox until every event of p was delivered at
// least once (as the harness does for pathupdate).
func waitDelivered(ctx context.Context, sb *sandbox.Server, p *traffic.Plan, routerDone <-chan error) (time.Time, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	want := int64(len(p.Items))
	for {
		if sb.Stats().Delivered >= want {
			if o := p.Check(sb); o.Missing == 0 {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d deliveries: %w", sb.Stats().Delivered, want, ctx.Err())
		case err := <-routerDone:
			return time.Time{}, fmt.Errorf("router stopped: %v", err)
		case <-t.C:
		}
	}
}
