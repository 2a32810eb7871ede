package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

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
		Flags:  gatewayFlags(gateway.AddrDefault),
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

// gatewayConfig reads the gateway settings. It refuses a missing token
// with the settings to set.
func gatewayConfig(cmd *cli.Command, log zerolog.Logger, connected func() bool) (gateway.Config, error) {
	tok, err := secretSetting(cmd, "gateway-token", "gateway-token-file")
	if err != nil {
		return gateway.Config{}, err
	}
	cfg := gateway.Config{
		Addr:         cmd.String("gateway-addr"),
		Token:        tok,
		MaxBodyBytes: cmd.Int64("gateway-max-body-bytes"),
		MaxEvents:    cmd.Int("gateway-max-events"),
		Connected:    connected,
		Logger:       log.With().Str("component", "gateway").Logger(),
	}
	err = cfg.WithDefaults().Validate()
	if errors.Is(err, gateway.ErrNoToken) {
		return cfg, fmt.Errorf("the gateway needs a bearer token: set PATHUPDATE_GATEWAY_TOKEN or PATHUPDATE_GATEWAY_TOKEN_FILE "+
			"(or --gateway-token / --gateway-token-file), at least %d characters, e.g. the output of `openssl rand -hex 32`", gateway.MinTokenLen)
	}
	return cfg, flagNamed(err, gatewayGoNames)
}

// startGateway starts the gateway of the settings on nc (a connection the
// caller owns and closes after stopGateway). A worker with --gateway-addr
// set calls it after EnsureStreams.
func startGateway(ctx context.Context, cmd *cli.Command, log zerolog.Logger, nc *nats.Conn, js jetstream.JetStream) (*gateway.Server, error) {
	cfg, err := gatewayConfig(cmd, log, nc.IsConnected)
	if err != nil {
		return nil, err
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{Logger: log})
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

// stopGateway lets requests in progress finish, for at most
// gatewayShutdownTimeout.
func stopGateway(srv *gateway.Server, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), gatewayShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("gateway shutdown")
	}
}

func runGateway(ctx context.Context, cmd *cli.Command) error {
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	// Refuse a missing token before anything connects.
	if _, err := gatewayConfig(cmd, log, nil); err != nil {
		return err
	}
	nc, closeNATS, err := natsConn(ctx, cmd, log, "pathupdate-gateway", false)
	if err != nil {
		return err
	}
	defer closeNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	srv, err := startGateway(ctx, cmd, log, nc, js)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.Root().Writer, "gateway listening on %s%s\n", srv.URL(), gateway.Path)
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received: stopping the gateway")
		stopGateway(srv, log)
		return nil
	case <-srv.Done():
		return fmt.Errorf("gateway stopped serving: %w", srv.Err())
	}
}
