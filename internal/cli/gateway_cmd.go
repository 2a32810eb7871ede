package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// gatewayShutdownTimeout bounds how long requests in progress may finish
// (their PubAcks) after a signal; later they are cut and their clients
// send again.
const gatewayShutdownTimeout = 15 * time.Second

func gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "an HTTP door for producers without a NATS client: POST " + gateway.Path + " (one event or a JSON array)",
		Description: "Validates each event, publishes the valid ones to JetStream and answers after every PubAck, with a result\n" +
			"per event. Requires a bearer token (--gateway-token or --gateway-token-file). Listens on loopback by default.\n" +
			"It creates no streams: a worker does. See docs/gateway.md and docs/openapi/gateway.yaml.",
		Flags:  append(gatewayFlags(gateway.AddrDefault), printConfigFlag()),
		Action: runGateway,
	}
}

// gatewayFlags are the gateway's settings. `pathupdate gateway` listens on
// defaultAddr unless told otherwise; a worker passes "" so that the
// gateway runs only when --gateway-addr is set.
func gatewayFlags(defaultAddr string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "gateway-addr", Value: defaultAddr, Usage: "where the gateway listens (host:port)", Sources: cli.EnvVars("PATHUPDATE_GATEWAY_ADDR")},
		&cli.StringFlag{Name: "gateway-token", Usage: "bearer token the gateway requires (never logged)", Sources: cli.EnvVars("PATHUPDATE_GATEWAY_TOKEN")},
		&cli.StringFlag{Name: "gateway-token-file", Usage: "file holding the gateway's bearer token", Sources: cli.EnvVars("PATHUPDATE_GATEWAY_TOKEN_FILE")},
		&cli.Int64Flag{Name: "gateway-max-body-bytes", Value: gateway.MaxBodyBytesDefault, Usage: "largest request body (413 beyond)", Sources: cli.EnvVars("PATHUPDATE_GATEWAY_MAX_BODY_BYTES")},
		&cli.IntFlag{Name: "gateway-max-events", Value: gateway.MaxEventsDefault, Usage: "most events in one request (413 beyond)", Sources: cli.EnvVars("PATHUPDATE_GATEWAY_MAX_EVENTS")},
	}
}

// gatewayConfig takes the gateway settings into base; the error is a token
// file that cannot be read. checkSettings validates the result.
func gatewayConfig(cmd *cli.Command, base gateway.Config) (gateway.Config, error) {
	c := base
	take(cmd, "gateway-addr", &c.Addr, cmd.String)
	take(cmd, "gateway-max-body-bytes", &c.MaxBodyBytes, cmd.Int64)
	take(cmd, "gateway-max-events", &c.MaxEvents, cmd.Int)
	var err error
	c.Token, err = secretSetting(cmd, "gateway-token", "gateway-token-file")
	return c, err
}

// startGateway starts the gateway of the settings on nc (a connection the
// caller owns and closes after the gateway's shutdown). A worker with --gateway-addr
// set calls it after EnsureStreams.
func startGateway(ctx context.Context, cmd *cli.Command, log zerolog.Logger, nc *nats.Conn, js jetstream.JetStream, tp trace.TracerProvider) (*gateway.Server, error) {
	cfg, err := gatewayConfig(cmd, gateway.Config{})
	if err != nil {
		return nil, err
	}
	cfg.Connected, cfg.Logger, cfg.TracerProvider = nc.IsConnected, log.With().Str("component", "gateway").Logger(), tp
	// One send per event: an HTTP caller waits on the answer and sends a
	// 503's failed events again itself, and a request holds at most 16 in
	// flight, so a late PubAck there is an outage sooner than a queue.
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{Logger: log, TracerProvider: tp, AckAttempts: 1})
	if err != nil {
		return nil, err
	}
	srv, err := gateway.NewServer(pub, cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("--gateway-addr: %w", err)
	}
	return srv, nil
}

func runGateway(ctx context.Context, cmd *cli.Command) error {
	if cmd.Bool("print-config") { // prints, then checks the settings (checkBeforeAction lets it through)
		return printConfig(cmd, cmd.Root().Writer)
	}
	// The settings, the token included, were checked before (checkSettings).
	s, err := openSession(ctx, cmd, "pathupdate-gateway")
	if err != nil {
		return err
	}
	defer s.close()
	log := s.log
	srv, err := startGateway(ctx, cmd, log, s.nc, s.js, s.tp)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.Root().Writer, "gateway listening on %s%s\n", srv.URL(), gateway.Path)
	return serveUntilSignal(ctx, srv, "gateway", gatewayShutdownTimeout, log)
}
