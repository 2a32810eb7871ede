package retry

import (
	"math"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// FuzzConfigs: a Policy or BreakerConfig that Validate accepts (after
// WithDefaults) never makes NewBreaker panic, and its backoff never gives a
// negative delay; one it refuses is refused with FieldErrors only, and
// NewBreaker panics on it (its documented contract).
func FuzzConfigs(f *testing.F) {
	f.Add(int64(0), int64(0), 0.0, 0.0, 0, 0, int64(0), int64(0), int64(0))
	f.Add(int64(time.Millisecond), int64(time.Millisecond), 1.0, -1.0, 1, 1, int64(1), int64(1), int64(1))
	f.Add(int64(2*time.Minute), int64(time.Minute), 2.0, 0.5, 10, 5, int64(2*time.Minute), int64(time.Minute), int64(time.Minute))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), math.MaxFloat64, 0.99, math.MaxInt, math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(-1), int64(-1), math.NaN(), math.Inf(1), -1, -1, int64(-1), int64(-1), int64(-1))
	f.Fuzz(func(t *testing.T, initial, maxInterval int64, multiplier, jitter float64, attempts, threshold int, openInitial, openMax, probe int64) {
		p := Policy{InitialInterval: time.Duration(initial), MaxInterval: time.Duration(maxInterval), Multiplier: multiplier,
			RandomizationFactor: jitter, MaxAttempts: attempts}.WithDefaults()
		if err := p.Validate(); err != nil {
			onlyFieldErrors(t, err)
		} else {
			b := p.NewBackOff()
			for range 20 {
				if d := b.NextBackOff(); d < 0 {
					t.Fatalf("%+v: a negative delay %s", p, d)
				}
			}
		}
		c := BreakerConfig{Threshold: threshold, OpenInitial: time.Duration(openInitial), OpenMax: time.Duration(openMax),
			ProbeTimeout: time.Duration(probe)}
		err := c.WithDefaults().Validate()
		if err != nil {
			onlyFieldErrors(t, err)
		}
		defer func() {
			if r := recover(); (r != nil) != (err != nil) {
				t.Fatalf("%+v: Validate %v, NewBreaker panic %v", c, err, r)
			}
		}()
		NewBreaker(c)
	})
}

func onlyFieldErrors(t *testing.T, err error) {
	t.Helper()
	if len(pathupdate.FieldErrorsOf(err)) == 0 {
		t.Fatalf("no FieldError in %v", err)
	}
}
