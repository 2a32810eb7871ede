package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/worker"
)

// jetStreamAttemptTimeout bounds one attempt to set up the streams: a
// request a cluster without a leader never answers is tried again rather
// than waited on for the whole --start-timeout.
const jetStreamAttemptTimeout = 10 * time.Second

// untilJetStreamAnswers runs f until it succeeds, fails in a way waiting
// cannot fix (pathupdate.PermanentStartError: a stream in the way, a
// partition count that differs from the stream's, a server too old,
// JetStream refused), or limit passes: a worker started together with its
// NATS cluster waits for the cluster to elect a leader instead of exiting,
// and one that can never start says so at once.
func untilJetStreamAnswers(ctx context.Context, log zerolog.Logger, limit time.Duration, f func(context.Context) error) error {
	err := retry.Until(ctx, retry.UntilConfig{
		Limit:          limit,
		AttemptTimeout: jetStreamAttemptTimeout,
		OnFailure: func(err error, _ int, wait time.Duration) {
			log.Warn().Err(err).Dur("retry_in", wait).Msg("JetStream not ready; waiting")
		},
	}, func(ctx context.Context) error {
		err := f(ctx)
		if pathupdate.PermanentStartError(err) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil && !retry.IsPermanent(err) && ctx.Err() == nil {
		return fmt.Errorf("JetStream not ready after --start-timeout %s: %w", limit, err)
	}
	return err
}

// refusalContext returns ctx, ended as soon as the server refuses nc a
// subject. A JetStream request the server's permissions refuse is never
// answered: without this every attempt would wait for its timeout and
// be tried again until --start-timeout, as if JetStream were only slow.
// startError turns the end into the refusal. Call stop once started: it
// restores nc's error handler.
func refusalContext(ctx context.Context, nc *nats.Conn) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	prev := nc.Opts.AsyncErrorCB // the logging handler connect set; read before anyone can change it
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if prev != nil {
			prev(c, sub, err)
		}
		// The pin advisories are optional (worker.PinnedAdvisories): a
		// user without them still runs, as the error handler's log says.
		if errors.Is(err, nats.ErrPermissionViolation) && !worker.IsPinnedAdvisoriesRefusal(err) {
			cancel(&refusedError{err: err})
		}
	})
	return ctx, func() {
		nc.SetErrorHandler(prev)
		cancel(nil)
	}
}

// refusedError is a subject the server's permissions refused at start.
type refusedError struct{ err error }

func (e *refusedError) Error() string {
	return fmt.Sprintf("the NATS server refused a subject to this user (%v): pathupdate needs to publish to logistics.>, $JS.API.>, "+
		"$JS.ACK.>, $KV.pathupdate_workers.>, $KV.pathupdate_quota.> and $KV.pathupdate_pause.> and to subscribe to _INBOX.> (README, \"Running in production\"); "+
		"grant them, or connect as another user", e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// startError is err, or the server's refusal when that is what ended
// ctx (a context from refusalContext).
func startError(ctx context.Context, err error) error {
	var refused *refusedError
	if err != nil && errors.As(context.Cause(ctx), &refused) {
		return refused
	}
	return err
}

// connectWaiting connects like connect. A command with --start-timeout
// (the worker) waits that long for a server that refuses connections or
// does not answer (started together with it, restarting); any other
// failure (credentials, TLS) and any other command ends at once.
func connectWaiting(ctx context.Context, cmd *cli.Command, log zerolog.Logger, url, name string) (*nats.Conn, error) {
	limit := cmd.Duration("start-timeout")
	if limit <= 0 {
		return connect(cmd, log, url, name)
	}
	var nc *nats.Conn
	err := retry.Until(ctx, retry.UntilConfig{
		Limit: limit,
		OnFailure: func(err error, _ int, wait time.Duration) {
			log.Warn().Err(err).Dur("retry_in", wait).Msg("NATS not reachable; waiting")
		},
	}, func(context.Context) error {
		var err error
		nc, err = connect(cmd, log, url, name)
		var timeout interface{ Timeout() bool }
		if err == nil || errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
			errors.As(err, &timeout) && timeout.Timeout() {
			return err
		}
		return retry.Permanent(err)
	})
	return nc, err
}
