package worker_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/worker"
)

// TestConfigValidateNamesFields: every field New uses is checked by
// Validate, and each problem comes as a FieldError naming the field
// (nested ones dotted). Before, a Breaker that NewBreaker refuses passed
// Validate and New panicked; a consumer name with a dot passed too and
// the server refused it at Start.
func TestConfigValidateNamesFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   worker.Config
		field string
	}{
		{"breaker max below initial", worker.Config{Breaker: retry.BreakerConfig{OpenInitial: 2 * time.Minute, OpenMax: time.Minute}}, "Breaker.OpenMax"},
		{"breaker threshold", worker.Config{Breaker: retry.BreakerConfig{Threshold: -1}}, "Breaker.Threshold"},
		{"breaker probe timeout", worker.Config{Breaker: retry.BreakerConfig{ProbeTimeout: -time.Second}}, "Breaker.ProbeTimeout"},
		{"retry attempts", worker.Config{Retry: retry.Policy{MaxAttempts: -1}}, "Retry.MaxAttempts"},
		{"retry multiplier NaN", worker.Config{Retry: retry.Policy{Multiplier: math.NaN()}}, "Retry.Multiplier"},
		{"consumer with a dot", worker.Config{Consumer: "a.b"}, "Consumer"},
		{"consumer with a blank", worker.Config{Consumer: "a b"}, "Consumer"},
		{"member id", worker.Config{MemberID: "w*1"}, "MemberID"},
		{"in flight", worker.Config{MaxInFlight: -1}, "MaxInFlight"},
		{"concurrency", worker.Config{Concurrency: -2}, "Concurrency"},
		{"ack wait", worker.Config{AckWait: 10 * time.Millisecond}, "AckWait"},
		{"pinned ttl", worker.Config{PinnedTTL: time.Millisecond}, "PinnedTTL"},
		{"member ttl", worker.Config{MemberTTL: time.Millisecond}, "MemberTTL"},
		{"shutdown timeout", worker.Config{ShutdownTimeout: -time.Second}, "ShutdownTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.WithDefaults().Validate()
			var fe *pathupdate.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate() = %v, want a FieldError for %s", err, tt.field)
			}
			// New refuses it with the same error instead of panicking.
			var panicked any
			func() {
				defer func() { panicked = recover() }()
				_, err = worker.New(nil, nil, nil, tt.cfg)
			}()
			if panicked != nil || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("New: panic %v, error %v; want the FieldError for %s", panicked, err, tt.field)
			}
		})
	}
	t.Run("several at once", func(t *testing.T) {
		t.Parallel()
		err := worker.Config{Concurrency: -1, Retry: retry.Policy{MaxAttempts: -1}}.WithDefaults().Validate()
		var got []string
		for _, fe := range pathupdate.FieldErrorsOf(err) {
			got = append(got, fe.Field)
		}
		if len(got) != 2 || got[0] != "Concurrency" || got[1] != "Retry.MaxAttempts" {
			t.Fatalf("fields %v of %v, want Concurrency and Retry.MaxAttempts", got, err)
		}
	})
}

// FuzzConfigNew: for any config Validate accepts, New neither fails nor
// panics. The seeds include the config that made New panic inside
// retry.NewBreaker.
func FuzzConfigNew(f *testing.F) {
	f.Add("pathupdate", 0, 0, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0, 0.0, 0, 0, int64(0), int64(0), int64(0))
	f.Add("p", 1, 1, int64(time.Second), int64(time.Second), int64(time.Second), int64(-1), int64(time.Millisecond), int64(time.Millisecond),
		1.0, -1.0, 1, 1, int64(time.Nanosecond), int64(time.Nanosecond), int64(time.Nanosecond))
	f.Add("", 0, 0, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0, 0.0, 0, 0, int64(2*time.Minute), int64(time.Minute), int64(0))
	f.Add("x", math.MaxInt, math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64),
		int64(math.MaxInt64), int64(math.MaxInt64), math.MaxFloat64, 0.999, math.MaxInt, math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add("n", 2, 3, int64(time.Second), int64(time.Second), int64(time.Second), int64(0), int64(time.Second), int64(0),
		math.Inf(1), math.NaN(), 2, 2, int64(time.Hour), int64(25*time.Hour), int64(time.Second))

	s := natstest.Start(f)
	_, js := natstest.Connect(f, s)
	api, err := pathupdate.NewClient(pathupdate.ClientConfig{Tokens: pathupdate.NewStaticTokenSource("t")})
	if err != nil {
		f.Fatal(err)
	}
	dl := deadletter.NewWriter(js, deadletter.WriterConfig{})
	f.Fuzz(func(t *testing.T, consumer string, inFlight, concurrency int, ackWait, pinnedTTL, memberTTL, shutdown, retryInitial, retryMax int64,
		multiplier, jitter float64, attempts, threshold int, openInitial, openMax, probe int64) {
		cfg := worker.Config{
			Consumer: consumer, MaxInFlight: inFlight, Concurrency: concurrency,
			AckWait: time.Duration(ackWait), PinnedTTL: time.Duration(pinnedTTL), MemberTTL: time.Duration(memberTTL),
			ShutdownTimeout: time.Duration(shutdown),
			Retry: retry.Policy{InitialInterval: time.Duration(retryInitial), MaxInterval: time.Duration(retryMax),
				Multiplier: multiplier, RandomizationFactor: jitter, MaxAttempts: attempts},
			Breaker: retry.BreakerConfig{Threshold: threshold, OpenInitial: time.Duration(openInitial), OpenMax: time.Duration(openMax),
				ProbeTimeout: time.Duration(probe)},
		}
		verr := cfg.WithDefaults().Validate()
		for _, fe := range pathupdate.FieldErrorsOf(verr) {
			if fe.Field == "" || fe.Problem == "" {
				t.Fatalf("a FieldError without field or problem: %#v", fe)
			}
		}
		if verr != nil && len(pathupdate.FieldErrorsOf(verr)) == 0 {
			t.Fatalf("Validate() = %v: no FieldError in it", verr)
		}
		w, err := worker.New(js, api, dl, cfg)
		if verr == nil && (err != nil || w == nil) {
			t.Fatalf("Validate accepted %+v but New: %v", cfg, err)
		}
		if verr != nil && err == nil {
			t.Fatalf("Validate refused %+v (%v) but New accepted it", cfg, verr)
		}
	})
}
