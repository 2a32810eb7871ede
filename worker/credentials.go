package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Prober is a Deliverer that can tell, without delivering anything,
// whether it could call the API now; *pathupdate.Client is one (it fetches
// an access_token). A worker whose Deliverer is a Prober checks the app's
// credentials when it starts instead of at the first event: a wrong
// AppSecret would otherwise stay invisible until then.
type Prober interface {
	Probe(ctx context.Context) error
}

// Blocker is a Deliverer that can tell, from the answers it got, that a
// setting outside the worker blocks delivery and what to fix;
// *pathupdate.Client is one (WeChat Cloud Hosting's open-interface
// service: a path not on its whitelist, the service switched off). Blocked
// returns nil when nothing does. Readiness reports it beside refused
// credentials; the events themselves wait behind the breaker.
type Blocker interface {
	Blocked() error
}

// probeTimeout bounds one credentials probe.
const probeTimeout = 15 * time.Second

// checkCredentials probes once, at start. When WeChat refuses the
// credentials it logs what to fix, marks the worker not ready, and keeps
// probing in the background until they are accepted; the worker runs
// meanwhile, and any event it takes waits behind the breaker: nothing is
// dead-lettered for it.
func (w *Worker) checkCredentials(ctx context.Context) {
	p, ok := w.api.(Prober)
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := p.Probe(pctx)
	cancel()
	if !w.noteProbe(err) {
		return
	}
	w.probing.Add(1)
	go func() {
		defer w.probing.Done()
		every := w.cfg.Breaker.WithDefaults().OpenMax // as often as the breaker probes at most
		err := retry.Until(w.loopCtx, retry.UntilConfig{Initial: min(time.Second, every), Max: every, AttemptTimeout: probeTimeout},
			func(ctx context.Context) error {
				err := p.Probe(ctx)
				if w.loopCtx.Err() != nil || !w.noteProbe(err) {
					return nil // accepted, or not the credentials: done
				}
				return err
			})
		if err != nil && w.loopCtx.Err() == nil {
			w.log.Error().Err(err).Msg("credentials probe stopped") // cannot happen: the config is valid
		}
	}()
}

// noteProbe records a probe's result and reports whether to probe again:
// until a token can be had.
func (w *Worker) noteProbe(err error) (again bool) {
	var te *pathupdate.TokenError
	switch {
	case err == nil:
		w.mu.Lock()
		had := w.credentials != ""
		w.credentials = ""
		w.mu.Unlock()
		if had {
			w.log.Info().Msg("access_token fetched: WeChat accepts the credentials again")
		}
		return false
	case errors.As(err, &te) && te.Kind() == pathupdate.ConfigBroken:
		problem := fmt.Sprintf("WeChat refuses the credentials (%s: errcode %d %s): %s; delivery is paused until it accepts them",
			te.Op, te.ErrCode, te.ErrMsg, te.Fix())
		w.mu.Lock()
		changed := w.credentials != problem
		w.credentials = problem
		w.mu.Unlock()
		if changed {
			w.log.Error().Str("op", te.Op).Int("errcode", te.ErrCode).Str("errmsg", pathupdate.MaskPhones(te.ErrMsg)).
				Str("fix", te.Fix()).Msg("WeChat refuses the app credentials: delivery is paused until it accepts them")
		}
		return true
	default:
		// Not the credentials: the network, a -1, a quota. Delivery finds
		// out by itself, and the breaker pauses it if it lasts.
		w.log.Warn().Err(err).Msg("could not fetch an access_token at start; delivery will try again")
		return false
	}
}

// Health is what a worker says about its own delivery, for readiness
// checks, the members bucket and `pathupdate status`.
type Health struct {
	// Breaker is the circuit breaker's state: anything but retry.Closed
	// means delivery is paused for every event.
	Breaker retry.BreakerState
	// Why is what pauses delivery ("" when nothing does): refused
	// credentials, or the outcome that opened the breaker.
	Why string
}

// Health reports whether delivery is paused and why.
func (w *Worker) Health() Health {
	h := Health{Breaker: w.breaker.State()}
	err := w.Credentials()
	quota := w.QuotaPaused()
	switch {
	case err != nil:
		h.Why = err.Error()
	case quota != nil:
		h.Why = quota.Error()
	case h.Breaker != retry.Closed:
		h.Why = "circuit breaker " + h.Breaker.String() + ": the WeChat API fails for every event (" + w.breaker.Why() + ")"
	}
	return h
}

// Credentials returns nil unless WeChat refused the app's credentials at
// the last probe, or the Deliverer is a Blocker that reports a setting
// blocking delivery; the error says what to fix. For a readiness check.
func (w *Worker) Credentials() error {
	w.mu.Lock()
	creds := w.credentials
	w.mu.Unlock()
	if creds != "" {
		return errors.New(creds)
	}
	if b, ok := w.api.(Blocker); ok {
		return b.Blocked()
	}
	return nil
}
