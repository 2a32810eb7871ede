package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
)

// Check is one readiness condition. Run returns nil when it holds; its
// error text is shown in the /readyz answer, so it must name the problem
// and never hold a secret. Run must be quick and honour ctx.
type Check struct {
	// Name is the check's key in the /readyz answer: lower case letters,
	// digits and underscores, unique per Handler.
	Name string
	Run  func(ctx context.Context) error
	// Note, when set, is called for every /readyz answer; a non-empty
	// result is shown with the check's result as "note", whether it passes
	// or not: something an operator should see that is no fault. It must
	// be quick and hold no secret.
	Note func() string
}

// Names of the checks built here.
const (
	CheckNATS      = "nats"
	CheckConsuming = "consuming"
	CheckBreaker   = "breaker"
	CheckCreds     = "credentials"
	CheckPaused    = "paused"
)

// OperatorPause always passes: a pause an operator made on purpose
// (`pathupdate pause`) is no fault, and a rolling deploy during one must
// still see new workers ready. Its note says the pause while one stands;
// pass the worker's OperatorPause method.
func OperatorPause(record func() pause.Record) Check {
	return Check{Name: CheckPaused, Run: func(context.Context) error { return nil }, Note: func() string {
		r, now := record(), time.Now()
		if !r.Active(now) {
			return ""
		}
		return fmt.Sprintf("delivery %s by an operator since %s: events wait in JetStream; `pathupdate resume` lifts it",
			r.String(now), r.At.UTC().Format(time.RFC3339))
	}}
}

// Credentials passes while problem returns nil; pass the worker's
// Credentials method. It fails while WeChat refuses the app's credentials,
// with what to fix.
func Credentials(problem func() error) Check {
	return Check{Name: CheckCreds, Run: func(context.Context) error { return problem() }}
}

// NATSConnected passes while status reports nats.CONNECTED; pass the
// connection's Status method (nc.Status). While the client reconnects it
// fails, so an orchestrator stops counting the worker as ready.
func NATSConnected(status func() nats.Status) Check {
	return Check{Name: CheckNATS, Run: func(context.Context) error {
		if s := status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", strings.ToLower(s.String()))
		}
		return nil
	}}
}

// Consuming passes while consuming reports true: the worker has started
// pulling and has not stopped.
func Consuming(consuming func() bool) Check {
	return Check{Name: CheckConsuming, Run: func(context.Context) error {
		if !consuming() {
			return errors.New("not consuming")
		}
		return nil
	}}
}

// BreakerClosed passes while state reports retry.Closed; pass the
// worker's BreakerState method. Open and half-open mean the WeChat API is
// failing for every event and delivery is paused.
func BreakerClosed(state func() retry.BreakerState) Check {
	return Check{Name: CheckBreaker, Run: func(context.Context) error {
		if s := state(); s != retry.Closed {
			return fmt.Errorf("circuit breaker is %s: the WeChat API is failing for every event, delivery paused", s)
		}
		return nil
	}}
}

// validName reports whether n is a usable check name.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
