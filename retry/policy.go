package retry

import (
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Policy defaults.
const (
	InitialIntervalDefault     = 500 * time.Millisecond
	MaxIntervalDefault         = 30 * time.Second
	MultiplierDefault          = 2.0
	RandomizationFactorDefault = 0.5
	MaxAttemptsDefault         = 10
	// MaxIntervalLimit bounds Policy.MaxInterval: an event retried more
	// than a day later is better dead-lettered and replayed.
	MaxIntervalLimit = 24 * time.Hour
)

// NoJitter as Policy.RandomizationFactor turns jitter off (0 means the
// default). Any negative value does the same.
const NoJitter = -1.0

// Policy is the per-event retry rule. The zero value is usable after
// WithDefaults.
type Policy struct {
	// InitialInterval is the first delay before jitter. Default 500ms.
	InitialInterval time.Duration
	// MaxInterval caps the delay before jitter (as backoff/v4 does), so a
	// jittered delay can reach MaxInterval*(1+RandomizationFactor).
	// Default 30s.
	MaxInterval time.Duration
	// Multiplier grows the delay after each retry. Default 2.
	Multiplier float64
	// RandomizationFactor spreads each delay uniformly over
	// [d*(1-f), d*(1+f)] so that events failing together do not come back
	// together. Default 0.5; NoJitter for none.
	RandomizationFactor float64
	// MaxAttempts is how many attempts of one event may fail on their own
	// (Transient while the breaker was closed) before it is dead-lettered
	// with ReasonRetriesExhausted. Default 10.
	MaxAttempts int
}

// WithDefaults returns a copy of p with every zero field set to its default.
func (p Policy) WithDefaults() Policy {
	if p.InitialInterval == 0 {
		p.InitialInterval = InitialIntervalDefault
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = max(MaxIntervalDefault, p.InitialInterval)
	}
	if p.Multiplier == 0 {
		p.Multiplier = MultiplierDefault
	}
	if p.RandomizationFactor == 0 {
		p.RandomizationFactor = RandomizationFactorDefault
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = MaxAttemptsDefault
	}
	return p
}

// Validate checks a policy after WithDefaults and reports every field
// that cannot work as a pathupdate.FieldError.
func (p Policy) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "retry: Policy."}
	if p.InitialInterval <= 0 {
		errs.Add("InitialInterval", "%s: use a positive duration (default %s)", p.InitialInterval, InitialIntervalDefault)
	}
	switch {
	case p.MaxInterval < p.InitialInterval:
		errs.Add("MaxInterval", "%s is below InitialInterval %s: raise it (default %s)", p.MaxInterval, p.InitialInterval, MaxIntervalDefault)
	case p.MaxInterval > MaxIntervalLimit:
		// Jitter stretches a delay by up to 1+RandomizationFactor: far
		// beyond this it overflows into a negative delay.
		errs.Add("MaxInterval", "%s: use at most %s (default %s)", p.MaxInterval, MaxIntervalLimit, MaxIntervalDefault)
	}
	// NaN and infinities compare false with everything: name them.
	if !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 0) {
		errs.Add("Multiplier", "%g: use a finite number of 1 or more (default %g)", p.Multiplier, MultiplierDefault)
	}
	if !(p.RandomizationFactor < 1) || math.IsInf(p.RandomizationFactor, 0) {
		errs.Add("RandomizationFactor", "%g: use a number below 1, or NoJitter (default %g)", p.RandomizationFactor, RandomizationFactorDefault)
	}
	if p.MaxAttempts < 1 {
		errs.Add("MaxAttempts", "%d: use at least 1 (default %d)", p.MaxAttempts, MaxAttemptsDefault)
	}
	return errs.Err()
}

// NewBackOff returns the delay sequence for one held event. The budget is
// counted in attempts (MaxAttempts), not in time, so it never returns
// backoff.Stop. Not safe for concurrent use: one per event.
func (p Policy) NewBackOff() backoff.BackOff {
	p = p.WithDefaults()
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialInterval),
		backoff.WithMaxInterval(p.MaxInterval),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(max(0, p.RandomizationFactor)),
		backoff.WithMaxElapsedTime(0),
	)
}
