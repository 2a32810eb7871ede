package retry

import (
	"context"
	"errors"
	"strings"
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

func TestBreakerOneProbeAmongManyWaiters(t *testing.T) {
	t.Parallel()
	const waiters = 50
	b := NewBreaker(BreakerConfig{Threshold: 1, OpenInitial: 20 * time.Millisecond, OpenMax: 40 * time.Millisecond})
	b.Record(transient)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	passed := make(chan int, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			if err := b.Wait(ctx); err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			passed <- i
		})
	}
	defer wg.Wait()

	expectOne := func(what string) {
		t.Helper()
		select {
		case <-passed:
		case <-ctx.Done():
			t.Fatalf("%s: no probe let through", what)
		}
		if s := b.State(); s != HalfOpen {
			t.Fatalf("%s: state %s, want half_open", what, s)
		}
		// Nobody else may pass while the probe is out; the open period is
		// 20-40ms, so 100ms would let a buggy second caller through.
		select {
		case i := <-passed:
			t.Fatalf("%s: waiter %d passed while the probe was out", what, i)
		case <-time.After(100 * time.Millisecond):
		}
	}
	expectOne("first probe")

	// A failed probe opens the breaker again and lets one more probe out.
	b.Record(transient)
	if s := b.State(); s != Open {
		t.Fatalf("after a failed probe: %s, want open", s)
	}
	expectOne("second probe")

	// A good probe closes the breaker and releases everyone.
	b.Record(delivered)
	for n := 2; n < waiters; n++ {
		select {
		case <-passed:
		case <-ctx.Done():
			t.Fatalf("only %d of %d waiters passed after the breaker closed", n, waiters)
		}
	}
	if s := b.State(); s != Closed {
		t.Fatalf("state %s, want closed", s)
	}
}

func TestBreakerRelease(t *testing.T) {
	t.Parallel()
	b := NewBreaker(BreakerConfig{Threshold: 1, OpenInitial: time.Millisecond, ProbeTimeout: time.Hour})
	b.Release() // closed: no-op
	b.Record(transient)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Wait(ctx); err != nil { // the probe
		t.Fatal(err)
	}
	next := make(chan error, 1)
	go func() { next <- b.Wait(ctx) }()
	select {
	case err := <-next:
		t.Fatalf("second caller passed (%v) while the probe was out", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release() // the probe's context ended: hand the slot on
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the probe slot was not handed on after Release")
	}
	if s := b.State(); s != HalfOpen {
		t.Fatalf("state %s, want half_open (the new probe is out)", s)
	}
	b.Record(delivered)
	if s := b.State(); s != Closed {
		t.Fatalf("state %s, want closed", s)
	}
}

func TestBreakerLostProbe(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(t0)
	b := NewBreaker(BreakerConfig{Threshold: 1, ProbeTimeout: 10 * time.Second, Now: clk.Now})
	b.Record(transient)
	probe(t, b, clk) // and it never reports

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while the probe is out = %v, want to wait until the deadline", err)
	}
	clk.Advance(10 * time.Second)
	if err := b.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after ProbeTimeout = %v, want a new probe", err)
	}
}

func TestBreakerWaitContext(t *testing.T) {
	t.Parallel()
	b := NewBreaker(BreakerConfig{Threshold: 1, OpenInitial: time.Hour})

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := b.Wait(done); err != nil {
		t.Fatalf("Wait on a closed breaker = %v, want nil at once", err)
	}

	b.Record(transient)
	if err := b.Wait(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context on an open breaker = %v, want context.Canceled", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- b.Wait(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("Wait returned %v before its context ended", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after its context was cancelled")
	}
	if s := b.State(); s != Open {
		t.Fatalf("state %s after a cancelled Wait, want open", s)
	}
}

func TestBreakerOnChange(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(t0)
	var (
		mu  sync.Mutex
		got []string
		b   *Breaker
	)
	b = NewBreaker(BreakerConfig{Threshold: 1, Now: clk.Now, OnChange: func(from, to BreakerState) {
		_ = b.State() // must not deadlock: called outside the lock
		mu.Lock()
		got = append(got, from.String()+">"+to.String())
		mu.Unlock()
	}})
	b.Record(transient)
	probe(t, b, clk)
	b.Record(transient)
	probe(t, b, clk)
	b.Record(delivered)
	b.Record(delivered) // no change, no call
	want := "closed>open open>half_open half_open>open open>half_open half_open>closed"
	mu.Lock()
	defer mu.Unlock()
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("OnChange calls:\n got %s\nwant %s", s, want)
	}
}

func TestBreakerConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		c       BreakerConfig
		wantErr string
	}{
		{"zero value", BreakerConfig{}, ""},
		{"long initial raises max", BreakerConfig{OpenInitial: time.Minute}, ""},
		{"negative threshold", BreakerConfig{Threshold: -1}, "BreakerConfig.Threshold"},
		{"negative initial", BreakerConfig{OpenInitial: -time.Second}, "BreakerConfig.OpenInitial"},
		{"max below initial", BreakerConfig{OpenInitial: 2 * time.Second, OpenMax: time.Second}, "BreakerConfig.OpenMax"},
		{"negative probe timeout", BreakerConfig{ProbeTimeout: -time.Second}, "BreakerConfig.ProbeTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.c.WithDefaults().Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
			}
			defer func() {
				if r := recover(); (r != nil) != (tt.wantErr != "") {
					t.Fatalf("NewBreaker panic = %v, want a panic only for an invalid config", r)
				}
			}()
			NewBreaker(tt.c)
		})
	}
}

func TestBreakerOnChangeConcurrent(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls [][2]BreakerState
	)
	b := NewBreaker(BreakerConfig{Threshold: 1, OpenInitial: time.Nanosecond, OnChange: func(from, to BreakerState) {
		mu.Lock()
		calls = append(calls, [2]BreakerState{from, to})
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := b.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if (g+i)%3 == 0 {
					b.Record(delivered)
				} else {
					b.Record(transient)
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// Complete and in order: each change starts where the previous ended,
	// and the last one ends in the final state.
	prev := Closed
	for i, c := range calls {
		if c[0] != prev {
			t.Fatalf("call %d: %s>%s after a change to %s", i, c[0], c[1], prev)
		}
		prev = c[1]
	}
	if s := b.State(); prev != s {
		t.Fatalf("last OnChange went to %s, state is %s (%d calls)", prev, s, len(calls))
	}
}
