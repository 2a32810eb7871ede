package retry

import (
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

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
