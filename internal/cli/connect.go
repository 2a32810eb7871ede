package cli

import (
	"context"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/internal/tracing"
)

// session is a command's log, its JetStream connection and its tracer
// provider (nil: tracing off); close undoes them.
type session struct {
	log   zerolog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	tp    trace.TracerProvider
	close func()
}

// openSession builds the command's logger and connects it, as name, to
// --nats-url (never an embedded server: only the worker and the demo run
// one).
func openSession(ctx context.Context, cmd *cli.Command, name string) (session, error) {
	log, err := logger(cmd)
	if err != nil {
		return session{}, err
	}
	return openSessionWith(ctx, cmd, log, name)
}

func openSessionWith(ctx context.Context, cmd *cli.Command, log zerolog.Logger, name string) (session, error) {
	tp, stopTracing, err := tracerProvider(ctx, log, name)
	if err != nil {
		return session{}, err
	}
	nc, closeNATS, err := natsConn(ctx, cmd, log, name, false)
	if err != nil {
		stopTracing()
		return session{}, err
	}
	js, err := newJetStream(nc)
	if err != nil {
		closeNATS()
		stopTracing()
		return session{}, err
	}
	return session{log: log, nc: nc, js: js, tp: tp, close: func() { closeNATS(); stopTracing() }}, nil
}

// tracerProvider is the OTLP tracer provider the standard OTEL_*
// environment asks for (package tracing), nil when it asks for none, and
// the func that flushes its last spans (for at most 5 s) and stops it.
func tracerProvider(ctx context.Context, log zerolog.Logger, service string) (trace.TracerProvider, func(), error) {
	tp, stop, err := tracing.Provider(ctx, service, os.Getenv)
	if err != nil {
		return nil, func() {}, err
	}
	if tp == nil {
		return nil, func() {}, nil
	}
	log.Info().Str("service", service).Msg("tracing: exporting spans over OTLP (OTEL_EXPORTER_OTLP_*)")
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			log.Warn().Err(err).Msg("tracing: spans left unexported at stop")
		}
	}, nil
}
