package cli

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"
)

// session is a command's log and its JetStream connection; close undoes
// the connection.
type session struct {
	log   zerolog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
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
	nc, closeNATS, err := natsConn(ctx, cmd, log, name, false)
	if err != nil {
		return session{}, err
	}
	js, err := newJetStream(nc)
	if err != nil {
		closeNATS()
		return session{}, err
	}
	return session{log: log, nc: nc, js: js, close: closeNATS}, nil
}
