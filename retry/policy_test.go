package retry

import (
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	p := Policy{MaxAttempts: 3, RandomizationFactor: NoJitter}
	tests := []struct {
		name     string
		kind     pathupdate.Kind
		attempts int
		want     Decision
	}{
		{"delivered", pathupdate.Delivered, 1, Decision{Action: Ack}},
		{"delivered after retries", pathupdate.Delivered, 2, Decision{Action: Ack}},
		{"rejected", pathupdate.Rejected, 1, Decision{Action: DeadLetter, Reason: ReasonRejected}},
		{"rejected ignores budget", pathupdate.Rejected, 0, Decision{Action: DeadLetter, Reason: ReasonRejected}},
		{"transient first", pathupdate.Transient, 1, Decision{Action: Retry, Delay: InitialIntervalDefault}},
		{"transient not counted", pathupdate.Transient, 0, Decision{Action: Retry, Delay: InitialIntervalDefault}},
		{"transient last within budget", pathupdate.Transient, 2, Decision{Action: Retry, Delay: InitialIntervalDefault}},
		{"transient budget reached", pathupdate.Transient, 3, Decision{Action: DeadLetter, Reason: ReasonRetriesExhausted}},
		{"transient past budget", pathupdate.Transient, 4, Decision{Action: DeadLetter, Reason: ReasonRetriesExhausted}},
		{"unknown kind like transient", pathupdate.Kind(0), 1, Decision{Action: Retry, Delay: InitialIntervalDefault}},
		{"unknown kind budget", pathupdate.Kind(99), 3, Decision{Action: DeadLetter, Reason: ReasonRetriesExhausted}},
		{"token invalid", pathupdate.TokenInvalid, 1, Decision{Action: Pause}},
		{"token invalid never exhausts", pathupdate.TokenInvalid, 1000, Decision{Action: Pause}},
		{"config broken", pathupdate.ConfigBroken, 1000, Decision{Action: Pause}},
		{"throttled", pathupdate.Throttled, 1000, Decision{Action: Pause}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.Decide(pathupdate.Outcome{Kind: tt.kind}, tt.attempts, p.NewBackOff())
			if got != tt.want {
				t.Fatalf("Decide(%s, %d) = %+v, want %+v", tt.kind, tt.attempts, got, tt.want)
			}
		})
	}
}

func TestDecideBudgetOfOne(t *testing.T) {
	t.Parallel()
	p := Policy{MaxAttempts: 1}
	if got := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 1, p.NewBackOff()); got.Reason != ReasonRetriesExhausted {
		t.Fatalf("MaxAttempts 1, 1 failed attempt: %+v, want dead letter retries_exhausted", got)
	}
	if got := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 0, p.NewBackOff()); got.Action != Retry {
		t.Fatalf("MaxAttempts 1, no counted attempt: %+v, want retry", got)
	}
}

func TestDecideDefaultBudget(t *testing.T) {
	t.Parallel()
	var p Policy // zero value: defaults apply
	b := p.NewBackOff()
	o := pathupdate.Outcome{Kind: pathupdate.Transient}
	for n := 1; n < MaxAttemptsDefault; n++ {
		if d := p.Decide(o, n, b); d.Action != Retry {
			t.Fatalf("attempt %d of %d: %+v, want retry", n, MaxAttemptsDefault, d)
		}
	}
	if d := p.Decide(o, MaxAttemptsDefault, b); d.Action != DeadLetter || d.Reason != ReasonRetriesExhausted {
		t.Fatalf("attempt %d: %+v, want retries_exhausted", MaxAttemptsDefault, d)
	}
}

func TestDecideDelayGrowthAndCap(t *testing.T) {
	t.Parallel()
	p := Policy{RandomizationFactor: NoJitter, MaxAttempts: 100}
	b := p.NewBackOff()
	want := []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for i, w := range want {
		d := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, i+1, b)
		if d.Action != Retry || d.Delay != w {
			t.Fatalf("retry %d: %+v, want retry in %s", i+1, d, w)
		}
	}
}

func TestDecideDoesNotDrawUnlessRetry(t *testing.T) {
	t.Parallel()
	p := Policy{RandomizationFactor: NoJitter}
	b := p.NewBackOff()
	for _, k := range []pathupdate.Kind{pathupdate.Delivered, pathupdate.Rejected, pathupdate.TokenInvalid, pathupdate.ConfigBroken, pathupdate.Throttled} {
		p.Decide(pathupdate.Outcome{Kind: k}, 1, b)
	}
	if d := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 1, b); d.Delay != InitialIntervalDefault {
		t.Fatalf("first retry after pauses: delay %s, want %s (pauses must not grow the delay)", d.Delay, InitialIntervalDefault)
	}
}

func TestDecideJitterBounds(t *testing.T) {
	t.Parallel()
	p := Policy{InitialInterval: 100 * time.Millisecond, MaxInterval: 800 * time.Millisecond, RandomizationFactor: 0.5, MaxAttempts: 100}
	base := []time.Duration{100, 200, 400, 800, 800} // ms, before jitter
	const runs = 400
	for step, ms := range base {
		cur := ms * time.Millisecond
		lo, hi := cur/2, cur*3/2
		minSeen, maxSeen := hi, lo
		for range runs {
			b := p.NewBackOff()
			var d Decision
			for i := 0; i <= step; i++ {
				d = p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 1, b)
			}
			if d.Delay < lo || d.Delay > hi {
				t.Fatalf("step %d: delay %s outside [%s, %s]", step, d.Delay, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d.Delay), max(maxSeen, d.Delay)
		}
		// Uniform over [lo, hi]: with 400 draws both outer quarters are hit
		// except with probability ~2*(3/4)^400.
		if minSeen > lo+(hi-lo)/4 || maxSeen < hi-(hi-lo)/4 {
			t.Fatalf("step %d: delays %s..%s do not spread over [%s, %s]", step, minSeen, maxSeen, lo, hi)
		}
	}
}

func TestDecideBackOffStop(t *testing.T) {
	t.Parallel()
	p := Policy{}
	got := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 1, &backoff.StopBackOff{})
	if got.Action != DeadLetter || got.Reason != ReasonRetriesExhausted {
		t.Fatalf("BackOff said Stop: %+v, want retries_exhausted", got)
	}
}

func TestDecideNilBackOff(t *testing.T) {
	t.Parallel()
	p := Policy{RandomizationFactor: NoJitter}
	if got := p.Decide(pathupdate.Outcome{Kind: pathupdate.Transient}, 1, nil); got.Action != Retry || got.Delay != InitialIntervalDefault {
		t.Fatalf("nil BackOff: %+v, want retry in %s", got, InitialIntervalDefault)
	}
}

func TestNewBackOffNeverStops(t *testing.T) {
	t.Parallel()
	eb, ok := Policy{}.NewBackOff().(*backoff.ExponentialBackOff)
	if !ok {
		t.Fatalf("NewBackOff is %T, want *backoff.ExponentialBackOff", Policy{}.NewBackOff())
	}
	if eb.MaxElapsedTime != 0 {
		t.Fatalf("MaxElapsedTime = %s, want 0 (budget is attempts)", eb.MaxElapsedTime)
	}
	if eb.Multiplier != MultiplierDefault || eb.RandomizationFactor != RandomizationFactorDefault ||
		eb.InitialInterval != InitialIntervalDefault || eb.MaxInterval != MaxIntervalDefault {
		t.Fatalf("NewBackOff of zero Policy = %+v, want the defaults", eb)
	}
}

func TestPolicyWithDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       Policy
		wantErr string // substring; empty means valid
	}{
		{"zero value", Policy{}, ""},
		{"no jitter", Policy{RandomizationFactor: NoJitter}, ""},
		{"long initial raises max", Policy{InitialInterval: time.Minute}, ""},
		{"negative initial", Policy{InitialInterval: -time.Second}, "Policy.InitialInterval"},
		{"max below initial", Policy{InitialInterval: 2 * time.Second, MaxInterval: time.Second}, "Policy.MaxInterval"},
		{"multiplier below one", Policy{Multiplier: 0.5}, "Policy.Multiplier"},
		{"jitter of one", Policy{RandomizationFactor: 1}, "Policy.RandomizationFactor"},
		{"negative attempts", Policy{MaxAttempts: -1}, "Policy.MaxAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p.WithDefaults()
			if p != p.WithDefaults() {
				t.Fatalf("WithDefaults not idempotent: %+v then %+v", p, p.WithDefaults())
			}
			err := p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
	if err := (Policy{}).Validate(); err == nil {
		t.Fatal("Validate of a zero Policy without WithDefaults passed")
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	for a, want := range map[Action]string{Ack: "ack", DeadLetter: "dead_letter", Retry: "retry", Pause: "pause", 0: "action(0)"} {
		if a.String() != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), a.String(), want)
		}
	}
	for s, want := range map[BreakerState]string{Closed: "closed", Open: "open", HalfOpen: "half_open"} {
		if s.String() != want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
