package worker_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// quotaSignal is an Observer that keeps what the worker says of the quota
// and the rate limit, and wakes a test waiting for a condition on them.
type quotaSignal struct {
	worker.NopObserver
	mu      sync.Mutex
	quota   *pathupdate.Quota
	resume  time.Time
	pauses  int
	share   float64
	changed chan struct{}
}

func newQuotaSignal() *quotaSignal { return &quotaSignal{changed: make(chan struct{})} }

func (s *quotaSignal) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *quotaSignal) QuotaSeen(q pathupdate.Quota) { s.update(func() { s.quota = &q }) }
func (s *quotaSignal) QuotaPaused(resume time.Time) {
	s.update(func() {
		if !resume.IsZero() {
			s.pauses++
		}
		s.resume = resume
	})
}
func (s *quotaSignal) RateLimited(_ time.Duration, share float64) {
	s.mu.Lock()
	same := s.share == share
	s.mu.Unlock()
	if !same {
		s.update(func() { s.share = share })
	}
}

// until waits for cond to hold, looking again at every change, and fails
// the test after timeout.
func (s *quotaSignal) until(t *testing.T, what string, timeout time.Duration, cond func(s *quotaSignal) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, ch := cond(s), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// TestDailyQuotaPausesUntilQuotaShows: with a daily quota of 100 and 150
// events, 100 are delivered, the rest wait (nothing dead-lettered, no tight
// loop of 45009s), the worker says when it resumes, and once the day
// changes the rest are delivered in order.
func TestDailyQuotaPausesUntilQuotaShows(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{DailyQuota: 100}})
	trs := traces("QD", 30, 5)
	b.register(trs)
	b.publishInterleaved(t, trs)
	sig := newQuotaSignal()
	w := b.startWorker(t, worker.Config{QuotaInterval: time.Second, Observer: sig})

	sig.until(t, "paused with 0 remaining", time.Minute, func(s *quotaSignal) bool {
		return !s.resume.IsZero() && s.quota != nil && s.quota.DailyLimit == 100 && s.quota.Remain == 0
	})
	if err := w.QuotaPaused(); err == nil {
		t.Fatal("QuotaPaused is nil while the quota is spent")
	}
	if h := w.Health(); h.Why == "" {
		t.Fatal("Health says nothing of the spent quota")
	}
	sig.mu.Lock()
	resume := sig.resume
	sig.mu.Unlock()
	if want := pathupdate.NextQuotaReset(time.Now()); !resume.Equal(want) {
		t.Fatalf("resumes at %s, want WeChat's next daily reset %s", resume, want)
	}
	if n := b.sb.Stats().Delivered; n != 100 {
		t.Fatalf("%d delivered on a quota of 100", n)
	}
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters for a spent quota, want none", len(dl))
	}

	b.sb.NextDay()
	b.waitSettled(t, time.Minute)
	b.checkDelivered(t, trs)
	if err := w.QuotaPaused(); err != nil {
		t.Fatalf("still paused after the day change: %v", err)
	}
	if dl := b.deadLetters(t); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
	// Each lane meets 45009 about once before the pause holds it back.
	if n := b.sb.Stats().ByErrcode[sandbox.ErrcodeDailyQuota]; n > int64(2*len(trs)) {
		t.Fatalf("%d calls answered 45009 for %d waybills: the pause did not hold delivery back", n, len(trs))
	}
}

// TestOneWorkerAsksForTheQuota: of two workers only the first member by ID
// asks getApiQuota and publishes it; both see it; when it stops, the
// other takes over.
func TestOneWorkerAsksForTheQuota(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{Faults: sandbox.Faults{DailyQuota: 5000}})
	sig1, sig2 := newQuotaSignal(), newQuotaSignal()
	w1 := b.startWorker(t, worker.Config{QuotaInterval: time.Second, Observer: sig1})
	w2 := b.startWorker(t, worker.Config{QuotaInterval: time.Second, Observer: sig2})
	ids := []string{w1.ID(), w2.ID()}
	slices.Sort(ids)
	first := map[string]*worker.Worker{w1.ID(): w1, w2.ID(): w2}

	seen := func(s *quotaSignal) bool { return s.quota != nil && s.quota.DailyLimit == 5000 }
	sig1.until(t, "worker 1 sees the quota", 30*time.Second, seen)
	sig2.until(t, "worker 2 sees the quota", 30*time.Second, seen)
	ctx := context.Background()
	// Once both have seen each other (each holds half the partitions),
	// every reading is the elected member's.
	split := time.Now().Add(30 * time.Second)
	for len(w1.Stats().Partitions) != pathupdate.DefaultPartitions/2 || len(w2.Stats().Partitions) != pathupdate.DefaultPartitions/2 {
		if time.Now().After(split) {
			t.Fatalf("partitions not split within 30s: %v and %v", w1.Stats().Partitions, w2.Stats().Partitions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitReading(t, b, func(r *worker.QuotaReading) bool { return r.By == ids[0] })
	asks := b.sb.QuotaAsks()
	for range 3 {
		r := waitReading(t, b, func(r *worker.QuotaReading) bool { return b.sb.QuotaAsks() > asks })
		asks = b.sb.QuotaAsks()
		if r.By != ids[0] {
			t.Fatalf("reading by %s, want only the first member %s", r.By, ids[0])
		}
	}
	if err := first[ids[0]].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitReading(t, b, func(r *worker.QuotaReading) bool { return r.By == ids[1] })
}

// waitReading waits until the published reading satisfies ok.
func waitReading(t *testing.T, b *bundle, ok func(*worker.QuotaReading) bool) *worker.QuotaReading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		r, err := worker.ReadQuota(ctx, b.js)
		if err == nil && r != nil && ok(r) {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no such quota reading within 30s (last %+v, %v)", r, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRateLimitShared: the deployment's rate limit is divided among the
// live workers, and re-divided when one leaves.
func TestRateLimitShared(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{AcceptAnyWaybill: true})
	trs := traces("RL", 40, 50)
	b.publishInterleaved(t, trs)
	sig1, sig2 := newQuotaSignal(), newQuotaSignal()
	w1 := b.startWorker(t, worker.Config{RateLimit: 40, Observer: sig1})
	b.startWorker(t, worker.Config{RateLimit: 40, Observer: sig2})
	half := func(s *quotaSignal) bool { return s.share == 20 }
	sig1.until(t, "worker 1 takes half", 30*time.Second, half)
	sig2.until(t, "worker 2 takes half", 30*time.Second, half)
	if err := w1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	sig2.until(t, "worker 2 takes the whole after worker 1 left", 30*time.Second, func(s *quotaSignal) bool { return s.share == 40 })
}

// rateObserver sums the rate limiter's waits and keeps every settlement's
// attempts.
type rateObserver struct {
	settledSignal
	mu       sync.Mutex
	waited   time.Duration
	attempts map[int]int // attempts -> settlements
}

func (o *rateObserver) QuotaSeen(pathupdate.Quota) {}
func (o *rateObserver) QuotaPaused(time.Time)      {}
func (o *rateObserver) RateLimited(d time.Duration, _ float64) {
	o.mu.Lock()
	o.waited += d
	o.mu.Unlock()
}
func (o *rateObserver) Settled(s worker.Settlement) {
	o.mu.Lock()
	o.attempts[s.Attempts]++
	o.mu.Unlock()
	o.settledSignal.Settled(s)
}

// TestRateLimitWaitIsNoAttempt: events held back by the rate limiter are
// delivered in order per waybill with one attempt each; the waits are
// reported, and no retry is counted for them.
func TestRateLimitWaitIsNoAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{AcceptAnyWaybill: true})
	trs := traces("RW", 20, 5)
	b.publishInterleaved(t, trs)
	o := &rateObserver{attempts: map[int]int{}}
	w := b.startWorker(t, worker.Config{RateLimit: 50, Observer: o})
	waitFor(t, o.reached(100), time.Minute, "100 events settled")
	b.checkDelivered(t, trs)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.attempts[1] != 100 {
		t.Fatalf("attempts per event %v, want one attempt for each of 100", o.attempts)
	}
	if o.waited <= 0 {
		t.Fatal("no wait for the rate limiter reported although 100 events went out at 50/s")
	}
	if st := w.Stats(); st.Retries != 0 || st.Paused != 0 {
		t.Fatalf("stats %+v: the limiter's waits counted as retries or pauses", st)
	}
}
