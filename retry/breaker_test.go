package retry

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is the breaker's Now in tests that need exact times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

var (
	t0          = time.Date(2025, 3, 1, 12, 0, 17, 500_000_000, time.UTC)
	delivered   = pathupdate.Outcome{Kind: pathupdate.Delivered}
	rejected    = pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: pathupdate.ErrcodeWaybillNotFound}
	transient   = pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: pathupdate.ErrcodeSystemError}
	tokenBad    = pathupdate.Outcome{Kind: pathupdate.TokenInvalid, ErrCode: pathupdate.ErrcodeInvalidCredential}
	configBad   = pathupdate.Outcome{Kind: pathupdate.ConfigBroken, ErrCode: pathupdate.ErrcodeIPNotWhitelisted}
	minuteQuota = pathupdate.Outcome{Kind: pathupdate.Throttled, ErrCode: pathupdate.ErrcodeMinuteQuota}
	dailyQuota  = pathupdate.Outcome{Kind: pathupdate.Throttled, ErrCode: pathupdate.ErrcodeDailyQuota}
	throttled   = pathupdate.Outcome{Kind: pathupdate.Throttled} // a limit with no known errcode
)

// probe makes the breaker, open and past its period on clk, hand out the
// probe; it fails the test if Wait blocks.
func probe(t *testing.T, b *Breaker, clk *fakeClock) {
	t.Helper()
	clk.Set(b.OpenUntil())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Wait(ctx); err != nil {
		t.Fatalf("Wait after the open period: %v", err)
	}
	if s := b.State(); s != HalfOpen {
		t.Fatalf("state after the probe went: %s, want half_open", s)
	}
}

func TestBreakerRecord(t *testing.T) {
	t.Parallel()
	type step struct {
		o      pathupdate.Outcome
		closed bool // the verdict's state is Closed
	}
	tests := []struct {
		name      string
		threshold int
		steps     []step
		want      BreakerState
		wantUntil time.Duration // OpenUntil - t0 when want is Open
	}{
		{"transient below threshold stays closed", 3,
			[]step{{transient, true}, {transient, true}}, Closed, 0},
		{"threshold opens", 3,
			[]step{{transient, true}, {transient, true}, {transient, false}}, Open, time.Second},
		{"event-specific answers reset the run", 3,
			[]step{{transient, true}, {transient, true}, {rejected, true}, {transient, true}, {transient, true}, {delivered, true}, {transient, true}}, Closed, 0},
		{"token invalid counts toward threshold", 2,
			[]step{{tokenBad, true}, {transient, false}}, Open, time.Second},
		{"throttled without known errcode counts toward threshold", 2,
			[]step{{throttled, true}, {throttled, false}}, Open, time.Second},
		{"config broken opens at once", 5,
			[]step{{configBad, false}}, Open, time.Second},
		{"daily quota opens at once for OpenMax", 5,
			[]step{{dailyQuota, false}}, Open, 30 * time.Second},
		{"failures while open keep it open", 1,
			[]step{{transient, false}, {transient, false}, {tokenBad, false}}, Open, time.Second},
		{"a success while open closes", 1,
			[]step{{transient, false}, {delivered, true}, {transient, false}}, Open, time.Second},
		{"a rejection while open closes", 1,
			[]step{{transient, false}, {rejected, true}}, Closed, 0},
		{"a later daily quota extends the open period", 1,
			[]step{{transient, false}, {dailyQuota, false}}, Open, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(t0)
			b := NewBreaker(BreakerConfig{Threshold: tt.threshold, Now: clk.Now})
			var worked uint64
			for i, s := range tt.steps {
				if s.o.Kind.EventSpecific() {
					worked++
				}
				got := b.Record(s.o)
				if (got.State == Closed) != s.closed || got.Worked != worked {
					t.Fatalf("step %d Record(%s) = %+v, want closed %v, worked %d", i, s.o, got, s.closed, worked)
				}
				if b.Worked() != worked {
					t.Fatalf("step %d Worked() = %d, want %d", i, b.Worked(), worked)
				}
			}
			if got := b.State(); got != tt.want {
				t.Fatalf("state = %s, want %s", got, tt.want)
			}
			if tt.want == Open {
				if got := b.OpenUntil().Sub(t0); got != tt.wantUntil {
					t.Fatalf("open for %s, want %s", got, tt.wantUntil)
				}
			} else if !b.OpenUntil().IsZero() {
				t.Fatalf("OpenUntil = %s while %s, want zero", b.OpenUntil(), b.State())
			}
		})
	}
}

func TestBreakerFailedProbeDoublesUpToMax(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(t0)
	b := NewBreaker(BreakerConfig{Threshold: 1, OpenInitial: time.Second, OpenMax: 5 * time.Second, Now: clk.Now})
	b.Record(transient)
	if got := b.OpenUntil().Sub(clk.Now()); got != time.Second {
		t.Fatalf("first open period %s, want 1s", got)
	}
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		probe(t, b, clk)
		if v := b.Record(transient); v.State != Open {
			t.Fatalf("failed probe: verdict %+v, want open", v)
		}
		if got := b.OpenUntil().Sub(clk.Now()); b.State() != Open || got != want {
			t.Fatalf("after a failed probe: %s for %s, want open for %s", b.State(), got, want)
		}
	}
	probe(t, b, clk)
	b.Record(delivered)
	if b.State() != Closed {
		t.Fatalf("after a good probe: %s, want closed", b.State())
	}
	b.Record(transient)
	if got := b.OpenUntil().Sub(clk.Now()); got != time.Second {
		t.Fatalf("open period after closing and opening again: %s, want OpenInitial 1s", got)
	}
}

func TestBreakerMinuteQuota(t *testing.T) {
	t.Parallel()
	minute := time.Date(2025, 3, 1, 12, 1, 0, 0, time.UTC)
	for _, now := range []time.Time{
		time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		t0,
		time.Date(2025, 3, 1, 12, 0, 59, 999_000_000, time.UTC),
	} {
		var lo, hi time.Time
		for i := range 200 {
			clk := newFakeClock(now)
			b := NewBreaker(BreakerConfig{Now: clk.Now})
			if v := b.Record(minuteQuota); v.State != Open || b.State() != Open {
				t.Fatalf("45011 at %s: state %s, want open and not counted", now, b.State())
			}
			u := b.OpenUntil()
			if u.Before(minute) || !u.Before(minute.Add(MinuteQuotaJitter)) {
				t.Fatalf("45011 at %s: open until %s, want in [%s, +%s)", now, u, minute, MinuteQuotaJitter)
			}
			if i == 0 || u.Before(lo) {
				lo = u
			}
			if i == 0 || u.After(hi) {
				hi = u
			}
		}
		if hi.Sub(lo) < MinuteQuotaJitter/4 {
			t.Fatalf("45011: 200 open periods end within %s of each other: no jitter", hi.Sub(lo))
		}
	}

	// A probe answered 45011 waits for the next minute too.
	clk := newFakeClock(t0)
	b := NewBreaker(BreakerConfig{Threshold: 1, Now: clk.Now})
	b.Record(transient)
	probe(t, b, clk)
	b.Record(minuteQuota)
	if u := b.OpenUntil(); b.State() != Open || u.Before(minute) || !u.Before(minute.Add(MinuteQuotaJitter)) {
		t.Fatalf("probe answered 45011: %s until %s, want open until the next minute", b.State(), u)
	}
}

func TestBreakerDailyQuotaProbe(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(t0)
	b := NewBreaker(BreakerConfig{OpenMax: 10 * time.Second, Now: clk.Now})
	b.Record(dailyQuota)
	for range 3 {
		if got := b.OpenUntil().Sub(clk.Now()); got != 10*time.Second {
			t.Fatalf("daily quota: open for %s, want OpenMax", got)
		}
		probe(t, b, clk)
		b.Record(transient)
	}
}
