// Command pathupdate-floor is the reference of benchmark scenario 14: the
// least a worker process can do per event, run as a process of its own so
// its CPU time can be read from /proc like the worker's. Per partition it
// runs one raw explicit-ack pull consumer (the worker's layout and pull
// size); for each message it decodes the event, calls updatePath through
// the product's client (the connection pool the worker has), publishes a
// history record with a core publish, as the worker's history batches do,
// and acks once. It keeps no order, no retries, no confirmed acks, no
// metrics, no logs: what is left is the machine's cost of NATS, HTTP and
// JSON for one event. It runs until SIGTERM or SIGINT.
//
// It is started by the benchmark harness (internal/bench), not by users.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/bench"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pathupdate-floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		natsURL     = flag.String("nats-url", "", "the JetStream server holding the trace stream (required)")
		apiBase     = flag.String("api-base", "", "the sandbox's URL (required)")
		appID       = flag.String("appid", "", "app id for the sandbox's token endpoint (required)")
		partitions  = flag.Int("partitions", pathupdate.DefaultPartitions, "partitions of the trace stream")
		concurrency = flag.Int("concurrency", worker.ConcurrencyDefault, "calls in flight at most")
		maxInFlight = flag.Int("max-in-flight", worker.MaxInFlightDefault, "unacked messages per partition")
	)
	flag.Parse()
	// The app secret comes from the environment the product reads it
	// from, never a flag: a flag shows in ps.
	secret := os.Getenv("WECHAT_APPSECRET")
	if *natsURL == "" || *apiBase == "" || *appID == "" || secret == "" {
		return errors.New("-nats-url, -api-base, -appid and WECHAT_APPSECRET are required")
	}
	client, err := assemble.Client(assemble.Settings{
		Worker: worker.Config{Concurrency: *concurrency},
		Tokens: pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: *appID, AppSecret: pathupdate.Secret(secret)}},
		Client: pathupdate.ClientConfig{APIBase: *apiBase},
	})
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The history record a worker publishes, as a core publish (as the
	// worker's history batches do, but for the last of each).
	handle := bench.MinimalHandler(client, *concurrency, func(m jetstream.Msg, ev pathupdate.Event) {
		_ = nc.Publish(history.SubjectPrefix+ev.WaybillID, m.Data())
	})
	for p := range *partitions {
		cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("floor-p%d", p), FilterSubject: pathupdate.PartitionFilter(p),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: *maxInFlight,
		})
		if err != nil {
			return fmt.Errorf("consumer for partition %d: %w", p, err)
		}
		cc, err := cons.Consume(handle, jetstream.PullMaxMessages(min(*maxInFlight, 256)))
		if err != nil {
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		defer cc.Stop()
	}
	<-ctx.Done()
	return nil
}
