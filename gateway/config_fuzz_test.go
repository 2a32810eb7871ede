package gateway_test

import (
	"math"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// FuzzConfigNewServer: NewServer accepts exactly the configs Validate
// accepts (after WithDefaults) and never panics; every refusal is made of
// FieldErrors that do not show the token.
func FuzzConfigNewServer(f *testing.F) {
	f.Add("", string(testToken), false, int64(0), 0, 0, int64(0), int64(0))
	f.Add("127.0.0.1:0", "", true, int64(1), 1, 1, int64(time.Second), int64(1))
	f.Add("8088", "short", false, int64(-1), -1, -1, int64(-1), int64(-1))
	f.Add(":99999", "tok with blanks in it!!", false, int64(math.MaxInt64), math.MaxInt, math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64))
	s := natstest.Start(f)
	_, js := natstest.Connect(f, s)
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, addr, token string, noAuth bool, maxBody int64, maxEvents, concurrency int, retryAfter, readTimeout int64) {
		cfg := gateway.Config{Addr: addr, Token: pathupdate.Secret(token), AllowNoAuth: noAuth, MaxBodyBytes: maxBody, MaxEvents: maxEvents,
			Concurrency: concurrency, RetryAfter: time.Duration(retryAfter), ReadTimeout: time.Duration(readTimeout)}
		verr := cfg.WithDefaults().Validate()
		srv, err := gateway.NewServer(pub, cfg)
		if (verr == nil) != (err == nil) || (err == nil && srv == nil) {
			t.Fatalf("Validate %v, NewServer %v", verr, err)
		}
		if verr != nil && len(pathupdate.FieldErrorsOf(verr)) == 0 {
			t.Fatalf("no FieldError in %v", verr)
		}
		// Shorter tokens can occur in a message by chance ("1000").
		if verr != nil && len(token) >= 12 && containsToken(verr.Error(), token) {
			t.Fatalf("the error shows the token: %v", verr)
		}
	})
}

func containsToken(msg, token string) bool {
	for i := 0; i+len(token) <= len(msg); i++ {
		if msg[i:i+len(token)] == token {
			return true
		}
	}
	return false
}
