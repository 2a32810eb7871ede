package deadletter_test

import (
	"math"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// FuzzStoreConfig: NewStore accepts exactly the configs Validate accepts
// (after WithDefaults) and never panics; refusals are FieldErrors.
func FuzzStoreConfig(f *testing.F) {
	f.Add(0, int64(0))
	f.Add(1, int64(1))
	f.Add(-1, int64(-1))
	f.Add(math.MaxInt, int64(math.MaxInt64))
	s := natstest.Start(f)
	_, js := natstest.Connect(f, s)
	f.Fuzz(func(t *testing.T, concurrency int, timeout int64) {
		cfg := deadletter.StoreConfig{Concurrency: concurrency, RequestTimeout: time.Duration(timeout)}
		verr := cfg.WithDefaults().Validate()
		st, err := deadletter.NewStore(js, cfg)
		if (verr == nil) != (err == nil) || (err == nil && st == nil) {
			t.Fatalf("Validate %v, NewStore %v", verr, err)
		}
		if verr != nil && len(pathupdate.FieldErrorsOf(verr)) == 0 {
			t.Fatalf("no FieldError in %v", verr)
		}
	})
}
