package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of UntilConfig.
const (
	UntilInitialDefault    = 250 * time.Millisecond
	UntilMaxDefault        = 5 * time.Second
	UntilMultiplierDefault = 2.0
)

// UntilConfig says how Until repeats an operation that fails while
// something it needs is not ready yet (JetStream electing a leader, a
// dead-letter write during a failover). The zero value is usable.
type UntilConfig struct {
	// Initial is the wait after the first failure; default
	// UntilInitialDefault (250ms).
	Initial time.Duration
	// Max bounds every wait; default UntilMaxDefault (5s).
	Max time.Duration
	// Multiplier grows the wait after each failure; default
	// UntilMultiplierDefault (2). 1 keeps it at Initial.
	Multiplier float64
	// Limit is how long Until keeps trying, from its call: no attempt
	// starts after it, and the wait before the last one is cut to end at
	// it. Default 0: until ctx ends.
	Limit time.Duration
	// AttemptTimeout bounds each call of the operation, so that one
	// request that is never answered does not use up Limit. Default 0: only
	// ctx bounds it.
	AttemptTimeout time.Duration
	// OnFailure, when set, is called after each failure Until will retry,
	// with the 1-based attempt number and the wait before the next one:
	// the place to log it. Not called for the failure Until returns.
	OnFailure func(err error, attempt int, wait time.Duration)
	// Now and Sleep are the clock; defaults time.Now and a timer that
	// stops early (returning ctx.Err()) when ctx ends. Tests pass a fake
	// clock to run without waiting.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c UntilConfig) WithDefaults() UntilConfig {
	if c.Initial == 0 {
		c.Initial = UntilInitialDefault
	}
	if c.Max == 0 {
		c.Max = max(UntilMaxDefault, c.Initial)
	}
	if c.Multiplier == 0 {
		c.Multiplier = UntilMultiplierDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c
}

// Validate reports every field of c (after WithDefaults) Until cannot
// work with.
func (c UntilConfig) Validate() error {
	var errs []error
	if c.Initial < 0 {
		errs = append(errs, fmt.Errorf("retry: UntilConfig.Initial is %s: use a positive duration (default %s)", c.Initial, UntilInitialDefault))
	}
	if c.Max < c.Initial {
		errs = append(errs, fmt.Errorf("retry: UntilConfig.Max (%s) is below Initial (%s): set Max at least Initial", c.Max, c.Initial))
	}
	if c.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("retry: UntilConfig.Multiplier is %g: use 1 or more (default %g)", c.Multiplier, UntilMultiplierDefault))
	}
	if c.Limit < 0 {
		errs = append(errs, fmt.Errorf("retry: UntilConfig.Limit is %s: use 0 (until ctx ends) or a positive duration", c.Limit))
	}
	if c.AttemptTimeout < 0 {
		errs = append(errs, fmt.Errorf("retry: UntilConfig.AttemptTimeout is %s: use 0 (none) or a positive duration", c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// PermanentError marks a failure that waiting cannot clear: Until returns
// it at once instead of trying again. Make one with Permanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap lets errors.Is and errors.As see the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as one Until must not retry. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Until calls op until it returns nil, returns an error marked Permanent,
// cfg.Limit passes or ctx ends, waiting after each failure (cfg.Initial,
// growing by cfg.Multiplier up to cfg.Max). It returns nil, or op's last
// error as op returned it (a permanent one keeps its mark, see
// IsPermanent). When ctx ends before op has failed even once it returns
// ctx.Err(). An invalid cfg is returned as an error without calling op.
func Until(ctx context.Context, cfg UntilConfig, op func(context.Context) error) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	var deadline time.Time
	if cfg.Limit > 0 {
		deadline = cfg.Now().Add(cfg.Limit)
	}
	wait := cfg.Initial
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last == nil {
				return err
			}
			return last
		}
		last = call(ctx, cfg.AttemptTimeout, op)
		if last == nil || IsPermanent(last) || ctx.Err() != nil {
			return last
		}
		d := wait
		if !deadline.IsZero() {
			left := deadline.Sub(cfg.Now())
			if left <= 0 {
				return last
			}
			d = min(d, left)
		}
		if cfg.OnFailure != nil {
			cfg.OnFailure(last, attempt, d)
		}
		if cfg.Sleep(ctx, d) != nil {
			return last
		}
		wait = min(time.Duration(float64(wait)*cfg.Multiplier), cfg.Max)
	}
}

// call runs op once, bounded by timeout when it is positive.
func call(ctx context.Context, timeout time.Duration, op func(context.Context) error) error {
	if timeout <= 0 {
		return op(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return op(ctx)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
