package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// service is an HTTP server a command runs beside or instead of a worker:
// the gateway, the console.
type service interface {
	Done() <-chan struct{}
	Err() error
	Shutdown(context.Context) error
}

// serveUntilSignal runs until a signal ends ctx, then shuts s down; it
// returns why s stopped serving if it stops on its own first.
func serveUntilSignal(ctx context.Context, s service, name string, grace time.Duration, log zerolog.Logger) error {
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received: stopping the " + name)
		shutdown(s, name, grace, log)
		return nil
	case <-s.Done():
		return fmt.Errorf("%s stopped serving: %w", name, s.Err())
	}
}

// shutdown lets requests in progress finish, for at most grace.
func shutdown(s service, name string, grace time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg(name + " shutdown")
	}
}
