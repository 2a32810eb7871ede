package retry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

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
