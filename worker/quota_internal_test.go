package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// quotaWorker is a Worker with only what applying readings and noting
// failures use, its log in a buffer and its clock at now.
func quotaWorker(cfg Config, now time.Time) (*Worker, *bytes.Buffer) {
	var log bytes.Buffer
	cfg.Now = func() time.Time { return now }
	cfg.Observer = NopObserver{}
	return &Worker{cfg: cfg, log: zerolog.New(&log), rate: newRateShare(cfg.RateLimit), quota: newQuotaState()}, &log
}

func reading(t *testing.T, q pathupdate.Quota, at time.Time) []byte {
	t.Helper()
	b, err := json.Marshal(QuotaReading{Quota: q, At: at, By: "w0"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplyReading: what a sequence of readings does to the pause of a
// spent quota and to the automatic rate limit.
func TestApplyReading(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 19, 0, 0, 0, time.UTC) // 03:00 CST
	reset := pathupdate.NextQuotaReset(now)
	spent := pathupdate.Quota{DailyLimit: 1000, Used: 1000}
	left := pathupdate.Quota{DailyLimit: 1000, Used: 10, Remain: 990}
	for _, tt := range []struct {
		name      string
		auto      bool
		readings  []pathupdate.Quota
		ats       []time.Duration // when each was asked, from now
		paused    bool
		share     float64
		noRateLog int // lines saying auto found no rate_limit
	}{
		{"quota left", false, []pathupdate.Quota{left}, []time.Duration{0}, false, 0, 0},
		{"spent pauses", false, []pathupdate.Quota{spent}, []time.Duration{0}, true, 0, 0},
		{"no daily limit is not spent", false, []pathupdate.Quota{{Used: 5}}, []time.Duration{0}, false, 0, 0},
		{"quota again resumes", false, []pathupdate.Quota{spent, left}, []time.Duration{0, time.Second}, false, 0, 0},
		{"an older reading does not resume", false, []pathupdate.Quota{spent, left}, []time.Duration{0, -time.Second}, true, 0, 0},
		{"yesterday's spent reading is over", false, []pathupdate.Quota{spent}, []time.Duration{-4 * time.Hour}, false, 0, 0},
		{"auto follows rate_limit", true, []pathupdate.Quota{{RateLimit: &pathupdate.RateLimit{CallCount: 120, RefreshSecond: 60}}},
			[]time.Duration{0}, false, 2, 0},
		{"auto without a rate says so once", true, []pathupdate.Quota{left, left, left}, []time.Duration{0, 1, 2}, false, 0, 1},
		{"auto loses its rate", true, []pathupdate.Quota{{RateLimit: &pathupdate.RateLimit{CallCount: 50, RefreshSecond: 1}}, left},
			[]time.Duration{0, 1}, false, 0, 1},
	} {
		w, log := quotaWorker(Config{RateLimitAuto: tt.auto}, now)
		for i, q := range tt.readings {
			w.applyReading(reading(t, q, now.Add(tt.ats[i])))
		}
		err := w.QuotaPaused()
		if got := err != nil; got != tt.paused {
			t.Errorf("%s: paused %v (%v), want %v", tt.name, got, err, tt.paused)
		}
		if tt.paused && !strings.Contains(err.Error(), reset.UTC().Format(time.RFC3339)) {
			t.Errorf("%s: %q does not name the reset %s", tt.name, err, reset)
		}
		if got := w.rate.share(); got != tt.share {
			t.Errorf("%s: share %v, want %v", tt.name, got, tt.share)
		}
		if n := strings.Count(log.String(), "reports no rate_limit"); n != tt.noRateLog {
			t.Errorf("%s: %d lines about no rate_limit, want %d:\n%s", tt.name, n, tt.noRateLog, log)
		}
		if w.Quota() == nil {
			t.Errorf("%s: no reading kept", tt.name)
		}
	}
}

// TestQuotaFailureLoggedOncePerKind: a failed getApiQuota is logged once
// per kind until one succeeds.
func TestQuotaFailureLoggedOncePerKind(t *testing.T) {
	t.Parallel()
	w, log := quotaWorker(Config{}, time.Now())
	for _, err := range []error{
		&pathupdate.QuotaError{ErrCode: 76021, ErrMsg: "cgi_path not found"},
		&pathupdate.QuotaError{ErrCode: 76021, ErrMsg: "cgi_path not found"},
		errors.New("dial tcp: connection refused"),
		&pathupdate.QuotaError{ErrCode: -1, ErrMsg: "system error"},
		errors.New("dial tcp: connection refused"),
		&pathupdate.TokenError{Op: "stable_token", ErrCode: 40125},
	} {
		w.noteQuotaFailure(err)
	}
	lines := strings.Count(log.String(), "getApiQuota failed")
	if lines != 4 {
		t.Fatalf("%d lines for 4 kinds of failure, want 4:\n%s", lines, log)
	}
	for _, kind := range []string{`"kind":"errcode 76021"`, `"kind":"errcode -1"`, `"kind":"transport"`, `"kind":"access_token"`} {
		if !strings.Contains(log.String(), kind) {
			t.Errorf("no line of %s:\n%s", kind, log)
		}
	}
	if w.Quota() != nil || w.QuotaPaused() != nil {
		t.Fatal("a failure changed the quota")
	}
}
