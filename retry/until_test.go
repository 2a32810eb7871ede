package retry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/retry"
)

var (
	errNotReady = errors.New("not ready")
	errRefused  = errors.New("refused for good")
)

// fakeClock is Until's clock in tests: Sleep moves time on at once and
// records the wait.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func TestUntil(t *testing.T) {
	t.Parallel()
	const s = time.Second
	for _, tt := range []struct {
		name string
		cfg  retry.UntilConfig
		// results[i] is what attempt i+1 returns; past the end, errNotReady.
		results   []error
		wantCalls int
		wantWaits []time.Duration
		wantErr   error // nil: success
		permanent bool
	}{
		{name: "first try", results: []error{nil}, wantCalls: 1},
		{name: "default backoff doubles from 250ms", results: []error{errNotReady, errNotReady, errNotReady, nil},
			wantCalls: 4, wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, s}},
		{name: "waits capped at Max", cfg: retry.UntilConfig{Initial: s, Max: 3 * s},
			results:   []error{errNotReady, errNotReady, errNotReady, errNotReady, errNotReady, nil},
			wantCalls: 6, wantWaits: []time.Duration{s, 2 * s, 3 * s, 3 * s, 3 * s}},
		{name: "multiplier 1 keeps the wait", cfg: retry.UntilConfig{Initial: s, Multiplier: 1},
			results: []error{errNotReady, errNotReady, nil}, wantCalls: 3, wantWaits: []time.Duration{s, s}},
		{name: "multiplier 1.5", cfg: retry.UntilConfig{Initial: 2 * s, Multiplier: 1.5, Max: 10 * s},
			results: []error{errNotReady, errNotReady, errNotReady, nil}, wantCalls: 4, wantWaits: []time.Duration{2 * s, 3 * s, 4500 * time.Millisecond}},
		{name: "permanent stops at once", results: []error{errNotReady, errNotReady, fmt.Errorf("setup: %w", retry.Permanent(errRefused))},
			wantCalls: 3, wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, wantErr: errRefused, permanent: true},
		{name: "permanent on the first try", results: []error{retry.Permanent(errRefused)}, wantCalls: 1, wantErr: errRefused, permanent: true},
		{name: "limit cuts the last wait and stops", cfg: retry.UntilConfig{Initial: s, Limit: 2 * s},
			wantCalls: 3, wantWaits: []time.Duration{s, s}, wantErr: errNotReady},
		{name: "limit shorter than the first wait", cfg: retry.UntilConfig{Initial: 10 * s, Limit: 3 * s},
			wantCalls: 2, wantWaits: []time.Duration{3 * s}, wantErr: errNotReady},
		{name: "limit reached on a success", cfg: retry.UntilConfig{Initial: s, Limit: 2 * s},
			results: []error{errNotReady, errNotReady, nil}, wantCalls: 3, wantWaits: []time.Duration{s, s}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
			cfg := tt.cfg
			cfg.Now, cfg.Sleep = clock.Now, clock.Sleep
			var failures []int
			var reported []time.Duration
			cfg.OnFailure = func(err error, attempt int, wait time.Duration) {
				if err == nil {
					t.Errorf("OnFailure(nil, %d, %s)", attempt, wait)
				}
				failures = append(failures, attempt)
				reported = append(reported, wait)
			}
			calls := 0
			err := retry.Until(context.Background(), cfg, func(context.Context) error {
				calls++
				if calls <= len(tt.results) {
					return tt.results[calls-1]
				}
				return fmt.Errorf("attempt %d: %w", calls, errNotReady)
			})
			if calls != tt.wantCalls {
				t.Errorf("op called %d times, want %d", calls, tt.wantCalls)
			}
			if !slices.Equal(clock.slept, tt.wantWaits) {
				t.Errorf("waited %v, want %v", clock.slept, tt.wantWaits)
			}
			if !slices.Equal(reported, clock.slept) {
				t.Errorf("OnFailure reported waits %v, slept %v", reported, clock.slept)
			}
			for i, a := range failures {
				if a != i+1 {
					t.Errorf("OnFailure attempts %v, want 1, 2, ...", failures)
					break
				}
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("Until: %v, want success", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Until: %v, want %v", err, tt.wantErr)
			}
			if got := retry.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
		})
	}
}

func TestUntilInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		cfg   retry.UntilConfig
		field string
	}{
		{"max below initial", retry.UntilConfig{Initial: 2 * time.Second, Max: time.Second}, "UntilConfig.Max"},
		{"negative initial", retry.UntilConfig{Initial: -time.Second}, "UntilConfig.Initial"},
		{"multiplier below 1", retry.UntilConfig{Multiplier: 0.5}, "UntilConfig.Multiplier"},
		{"negative limit", retry.UntilConfig{Limit: -time.Second}, "UntilConfig.Limit"},
		{"negative attempt timeout", retry.UntilConfig{AttemptTimeout: -time.Second}, "UntilConfig.AttemptTimeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			err := retry.Until(context.Background(), tt.cfg, func(context.Context) error { called = true; return nil })
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Until: %v, want an error naming %s", err, tt.field)
			}
			if called {
				t.Error("op called with an invalid config")
			}
		})
	}
}

// TestUntilContext: a context ended before the first attempt, during an
// attempt, or during a wait ends Until with the error that says most.
func TestUntilContext(t *testing.T) {
	t.Parallel()
	t.Run("ended before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		err := retry.Until(ctx, retry.UntilConfig{}, func(context.Context) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) || calls != 0 {
			t.Fatalf("Until: %v after %d calls, want context.Canceled and no call", err, calls)
		}
	})
	t.Run("ended during the attempt", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		err := retry.Until(ctx, retry.UntilConfig{}, func(context.Context) error {
			calls++
			cancel()
			return errNotReady
		})
		if !errors.Is(err, errNotReady) || calls != 1 {
			t.Fatalf("Until: %v after %d calls, want errNotReady after 1", err, calls)
		}
	})
	t.Run("ended during a real wait", func(t *testing.T) {
		t.Parallel()
		// An hour's wait with the real clock: only the cancellation can
		// end it, so a return proves the default Sleep watches ctx.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := retry.Until(ctx, retry.UntilConfig{Initial: time.Hour, OnFailure: func(error, int, time.Duration) { cancel() }},
			func(context.Context) error { return errNotReady })
		if !errors.Is(err, errNotReady) {
			t.Fatalf("Until: %v, want the last failure (errNotReady)", err)
		}
	})
}

// TestUntilAttemptTimeout: each attempt gets its own deadline when
// AttemptTimeout is set, and none of its own otherwise.
func TestUntilAttemptTimeout(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, time.Minute} {
		t.Run(timeout.String(), func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{now: time.Now()}
			var deadlines []time.Duration
			calls := 0
			err := retry.Until(context.Background(), retry.UntilConfig{AttemptTimeout: timeout, Now: clock.Now, Sleep: clock.Sleep},
				func(ctx context.Context) error {
					calls++
					if d, ok := ctx.Deadline(); ok {
						deadlines = append(deadlines, time.Until(d))
					}
					if calls < 3 {
						return errNotReady
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if timeout == 0 && len(deadlines) != 0 {
				t.Fatalf("attempts had deadlines %v with no AttemptTimeout", deadlines)
			}
			if timeout > 0 {
				if len(deadlines) != 3 {
					t.Fatalf("%d of 3 attempts had a deadline", len(deadlines))
				}
				for _, d := range deadlines {
					if d <= 0 || d > timeout {
						t.Fatalf("attempt deadline %s away, want within %s", d, timeout)
					}
				}
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	if retry.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
	err := fmt.Errorf("start: %w", retry.Permanent(errRefused))
	if !retry.IsPermanent(err) || !errors.Is(err, errRefused) || err.Error() != "start: refused for good" {
		t.Fatalf("wrapped Permanent: %q, IsPermanent %v, Is(errRefused) %v", err, retry.IsPermanent(err), errors.Is(err, errRefused))
	}
	if retry.IsPermanent(errRefused) {
		t.Fatal("IsPermanent of an unmarked error")
	}
}
