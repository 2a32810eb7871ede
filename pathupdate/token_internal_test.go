package pathupdate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scriptedFetch answers from a list, each fetch blocking until released.
type scriptedFetch struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
	answers []fetchAnswer
}

type fetchAnswer struct {
	tok      Secret
	lifetime time.Duration
	err      error
}

func (s *scriptedFetch) fetch(ctx context.Context, _ Secret) (Secret, time.Duration, error) {
	n := int(s.calls.Add(1)) - 1
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	a := s.answers[min(n, len(s.answers)-1)]
	return a.tok, a.lifetime, a.err
}

func newScripted(answers ...fetchAnswer) *scriptedFetch {
	return &scriptedFetch{started: make(chan struct{}, 16), release: make(chan struct{}), answers: answers}
}

func newTestCache(f fetchFunc, clk *fakeClock) *tokenCache {
	return &tokenCache{fetch: f, now: clk.Now, refreshBefore: DefaultRefreshBefore,
		fetchTimeout: time.Minute, log: zerolog.Nop()}
}

// waitWaiters polls until n callers have joined the fetch in flight.
func waitWaiters(t *testing.T, c *tokenCache, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := 0
		if c.inflight != nil {
			got = c.inflight.waiters
		}
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers joined the fetch, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTokenCacheFailedFetchReachesAllWaitersAndIsNotCached(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	boom := &TokenError{Op: "test", ErrCode: ErrcodeSystemError, ErrMsg: "system error"}
	sf := newScripted(fetchAnswer{err: boom}, fetchAnswer{tok: "T2", lifetime: time.Hour})
	c := newTestCache(sf.fetch, clk)

	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Token(context.Background())
			errs <- err
		}()
	}
	<-sf.started
	waitWaiters(t, c, n)
	close(sf.release)
	for range n {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("waiter got %v, want the fetch's error", err)
		}
	}
	if got := sf.calls.Load(); got != 1 {
		t.Fatalf("%d fetches for %d waiters, want 1", got, n)
	}
	// Not cached: the next call fetches again and succeeds.
	tok, err := c.Token(context.Background())
	<-sf.started
	if err != nil || tok != "T2" || sf.calls.Load() != 2 {
		t.Fatalf("after a failed fetch: %q, %v, %d fetches", tok.Reveal(), err, sf.calls.Load())
	}
}

func TestTokenCacheWaiterRespectsItsContext(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	sf := newScripted(fetchAnswer{tok: "T1", lifetime: time.Hour})
	c := newTestCache(sf.fetch, clk)

	patient := make(chan Secret, 1)
	go func() {
		tok, _ := c.Token(context.Background())
		patient <- tok
	}()
	<-sf.started
	waitWaiters(t, c, 1)

	ctx, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx)
		impatient <- err
	}()
	waitWaiters(t, c, 2)
	cancel()
	if err := <-impatient; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v, want context.Canceled", err)
	}
	// The fetch was not the impatient caller's: the other waiter still gets it.
	close(sf.release)
	if tok := <-patient; tok != "T1" {
		t.Fatalf("patient waiter got %q", tok.Reveal())
	}
	if _, err := c.Token(ctx); err != nil {
		t.Fatalf("a cached token needs no live ctx: %v", err)
	}
	if sf.calls.Load() != 1 {
		t.Fatalf("%d fetches, want 1", sf.calls.Load())
	}
}

func TestTokenCacheRefreshAheadAndFailedRefresh(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	boom := &TokenError{Op: "test", Err: errors.New("network down")}
	sf := newScripted(
		fetchAnswer{tok: "T1", lifetime: 2 * time.Hour},
		fetchAnswer{err: boom},
		fetchAnswer{err: boom},
	)
	close(sf.release)
	c := newTestCache(sf.fetch, clk)
	get := func() (Secret, error) {
		t.Helper()
		return c.Token(context.Background())
	}
	if tok, err := get(); err != nil || tok != "T1" {
		t.Fatalf("first: %q %v", tok.Reveal(), err)
	}
	clk.Advance(2*time.Hour - DefaultRefreshBefore - time.Second)
	_, _ = get()
	if sf.calls.Load() != 1 {
		t.Fatalf("refetched before the refresh window")
	}
	clk.Advance(2 * time.Second) // in the window, still valid: a failed refresh keeps T1
	if tok, err := get(); err != nil || tok != "T1" || sf.calls.Load() != 2 {
		t.Fatalf("failed refresh in the window: %q %v after %d fetches", tok.Reveal(), err, sf.calls.Load())
	}
	clk.Advance(DefaultRefreshBefore) // expired: the error comes through
	if _, err := get(); !errors.Is(err, boom) || sf.calls.Load() != 3 {
		t.Fatalf("failed refresh after expiry: %v after %d fetches", err, sf.calls.Load())
	}
}

func TestRefreshMargin(t *testing.T) {
	t.Parallel()
	tests := []struct{ before, life, want time.Duration }{
		{5 * time.Minute, 2 * time.Hour, 5 * time.Minute},
		{5 * time.Minute, 6 * time.Minute, 3 * time.Minute},
		{5 * time.Minute, 0, 0},
		{time.Second, time.Minute, time.Second},
	}
	for _, tt := range tests {
		if got := refreshMargin(tt.before, tt.life); got != tt.want {
			t.Errorf("refreshMargin(%v, %v) = %v, want %v", tt.before, tt.life, got, tt.want)
		}
	}
}
