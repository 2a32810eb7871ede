package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// QuotaBucket is the JetStream key-value bucket where the worker that
// watches WeChat's quota publishes what getApiQuota answered, under
// QuotaKey, for the other workers and `pathupdate status`.
const (
	QuotaBucket = "pathupdate_quota"
	QuotaKey    = "updatePath"
)

// QuotaIntervalDefault is how often the watching worker asks getApiQuota
// (Config.QuotaInterval); it also asks at once on a 45009.
const QuotaIntervalDefault = 5 * time.Minute

// QuotaAsker is a Deliverer that can ask WeChat for the quota of
// logistics.updatePath; *pathupdate.Client is one. Without it no worker
// watches the quota, and a 45009 still pauses delivery until the daily
// reset.
type QuotaAsker interface {
	APIQuota(ctx context.Context) (pathupdate.Quota, error)
}

// QuotaObserver is an Observer that also wants the quota and the rate
// limiter's waits; *metrics.Metrics is one. Its methods must be quick and
// never block.
type QuotaObserver interface {
	// QuotaSeen is a getApiQuota answer read from QuotaBucket.
	QuotaSeen(q pathupdate.Quota)
	// QuotaPaused is delivery pausing for a spent daily quota until
	// resume, or resuming (resume zero).
	QuotaPaused(resume time.Time)
	// RateLimited is one wait for the rate limiter before a call, and the
	// calls per second this worker may make now (0: no limit).
	RateLimited(waited time.Duration, share float64)
}

// QuotaReading is one getApiQuota answer as the watching worker published
// it.
type QuotaReading struct {
	pathupdate.Quota
	At time.Time `json:"at"` // when it was asked
	By string    `json:"by"` // the member that asked
}

// ReadQuota returns the last published reading, or nil when there is
// none yet (no worker has asked, or none can).
func ReadQuota(ctx context.Context, js jetstream.JetStream) (*QuotaReading, error) {
	kv, err := js.KeyValue(ctx, QuotaBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, QuotaKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r QuotaReading
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("worker: %s/%s: %w", QuotaBucket, QuotaKey, err)
	}
	return &r, nil
}

// quotaState is the worker's part in watching the quota: whether it is the
// member that asks, the last reading, and the pause of a spent quota.
type quotaState struct {
	kick    chan struct{} // a 45009 asks the watcher to ask now
	elected chan bool     // membership changes who asks
	done    sync.WaitGroup

	mu       sync.Mutex
	reading  *QuotaReading
	until    time.Time     // delivery paused until then; zero: not paused
	since    time.Time     // when the pause began
	changed  chan struct{} // closed when the pause ends
	failures map[string]bool
	noAuto   bool // said once that auto found no rate_limit
}

func newQuotaState() *quotaState {
	return &quotaState{kick: make(chan struct{}, 1), elected: make(chan bool, 1),
		changed: make(chan struct{}), failures: map[string]bool{}}
}

// waitQuota blocks while delivery is paused for a spent daily quota: until
// the reset passes or a reading shows quota again. It returns false when
// ctx ends first.
func (w *Worker) waitQuota(ctx context.Context) bool {
	q := w.quota
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		q.mu.Lock()
		until, ch := q.until, q.changed
		q.mu.Unlock()
		if until.IsZero() {
			return ctx.Err() == nil
		}
		d := until.Sub(w.cfg.Now())
		if d <= 0 {
			w.resumeQuota("WeChat's daily quota reset has passed")
			continue
		}
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		case <-t.C:
		}
	}
}

// pauseQuota pauses delivery until WeChat's next daily reset after at.
func (w *Worker) pauseQuota(at time.Time, why string) {
	q := w.quota
	until := pathupdate.NextQuotaReset(at)
	if !until.After(w.cfg.Now()) {
		return // a reading of a day gone by
	}
	q.mu.Lock()
	already := !q.until.IsZero() && !until.After(q.until)
	if !already {
		if q.until.IsZero() {
			q.since = at
		}
		q.until = until
	}
	q.mu.Unlock()
	if already {
		return
	}
	w.log.Warn().Time("resumes_at", until).Str("cause", why).
		Msg("WeChat's daily quota of logistics.updatePath is spent: delivery paused until its daily reset (00:00 China Standard Time) or until getApiQuota shows quota again; nothing is dead-lettered")
	if o, ok := w.cfg.Observer.(QuotaObserver); ok {
		o.QuotaPaused(until)
	}
}

// resumeQuota ends a pause of a spent quota.
func (w *Worker) resumeQuota(why string) {
	q := w.quota
	q.mu.Lock()
	if q.until.IsZero() {
		q.mu.Unlock()
		return
	}
	q.until, q.since = time.Time{}, time.Time{}
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
	w.log.Info().Str("cause", why).Msg("daily quota available: delivery resumes")
	if o, ok := w.cfg.Observer.(QuotaObserver); ok {
		o.QuotaPaused(time.Time{})
	}
}

// QuotaPaused returns nil unless delivery is paused because WeChat's daily
// quota is spent; the error says until when. For a readiness check.
func (w *Worker) QuotaPaused() error {
	w.quota.mu.Lock()
	until := w.quota.until
	w.quota.mu.Unlock()
	if until.IsZero() {
		return nil
	}
	return fmt.Errorf("WeChat's daily quota of logistics.updatePath is spent (45009): delivery paused until %s (its daily reset) or until getApiQuota shows quota again", until.UTC().Format(time.RFC3339))
}

// Quota returns the last getApiQuota reading any worker published, nil
// before the first.
func (w *Worker) Quota() *QuotaReading {
	w.quota.mu.Lock()
	defer w.quota.mu.Unlock()
	return w.quota.reading
}

// recordOutcome gives the breaker the outcome of a call Wait let through,
// except a 45009: a spent daily quota pauses delivery until the daily
// reset (waitQuota), which the breaker's open periods (seconds) would
// only probe again and again. The Verdict is what Decide reads.
func (w *Worker) recordOutcome(o pathupdate.Outcome) retry.Verdict {
	if o.Kind != pathupdate.Throttled || o.ErrCode != pathupdate.ErrcodeDailyQuota {
		return w.breaker.Record(o)
	}
	w.breaker.Release()
	w.pauseQuota(w.cfg.Now(), "45009 "+o.ErrMsg)
	select {
	case w.quota.kick <- struct{}{}:
	default:
	}
	return retry.Verdict{State: retry.Closed, Worked: w.breaker.Worked()}
}

// waitRate waits for this worker's share of the rate limit and tells the
// observer how long; it returns false when ctx ends first.
func (w *Worker) waitRate(ctx context.Context) bool {
	waited, err := w.rate.wait(ctx)
	if o, ok := w.cfg.Observer.(QuotaObserver); ok {
		o.RateLimited(waited, w.rate.share())
	}
	return err == nil
}

// membersSeen re-divides the rate limit over the live members and tells
// the watcher whether this worker is the one that asks for the quota: the
// first of the members by ID, which every worker computes alike.
func (w *Worker) membersSeen(ids []string) {
	w.rate.set(-1, len(ids))
	elected := len(ids) > 0 && ids[0] == w.cfg.MemberID
	select {
	case <-w.quota.elected: // only the latest matters
	default:
	}
	select {
	case w.quota.elected <- elected:
	default:
	}
}

// startQuota opens QuotaBucket and starts watching it, and asking
// getApiQuota while this worker is the elected member.
func (w *Worker) startQuota(ctx context.Context, replicas int) error {
	kv, err := w.js.KeyValue(ctx, QuotaBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = w.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: QuotaBucket,
			Description: "pathupdate: WeChat's quota of logistics.updatePath, as getApiQuota answered", History: 1, Replicas: replicas})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = w.js.KeyValue(ctx, QuotaBucket)
		}
	}
	if err != nil {
		return fmt.Errorf("worker: quota bucket %s: %w", QuotaBucket, err)
	}
	// The watch lives as long as the worker, not as long as this setup.
	watch, err := kv.Watch(w.loopCtx, QuotaKey)
	if err != nil {
		return fmt.Errorf("worker: watch %s: %w", QuotaBucket, err)
	}
	w.quota.done.Add(1)
	go func() {
		defer w.quota.done.Done()
		defer func() { _ = watch.Stop() }()
		w.watchQuota(kv, watch)
	}()
	return nil
}

// watchQuota applies every reading published, and asks getApiQuota every
// QuotaInterval, at once on a 45009 and on being elected, while this
// worker is the elected member.
func (w *Worker) watchQuota(kv jetstream.KeyValue, watch jetstream.KeyWatcher) {
	asker, _ := w.api.(QuotaAsker)
	t := time.NewTicker(w.cfg.QuotaInterval)
	defer t.Stop()
	elected := false
	for {
		ask := false
		select {
		case <-w.loopCtx.Done():
			return
		case e, ok := <-watch.Updates():
			if !ok {
				return
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				w.applyReading(e.Value())
			}
		case elected = <-w.quota.elected:
			ask = elected
		case <-w.quota.kick:
			ask = elected
		case <-t.C:
			ask = elected
		}
		if ask && asker != nil {
			w.askQuota(kv, asker)
		}
	}
}

// askQuota asks getApiQuota once and publishes the answer. A failure
// changes nothing and is logged once per kind until a success.
func (w *Worker) askQuota(kv jetstream.KeyValue, asker QuotaAsker) {
	ctx, cancel := context.WithTimeout(w.loopCtx, probeTimeout)
	defer cancel()
	q, err := asker.APIQuota(ctx)
	if err != nil {
		if w.loopCtx.Err() == nil {
			w.noteQuotaFailure(err)
		}
		return
	}
	w.quota.mu.Lock()
	clear(w.quota.failures)
	w.quota.mu.Unlock()
	b, _ := json.Marshal(QuotaReading{Quota: q, At: w.cfg.Now(), By: w.cfg.MemberID})
	if _, err := kv.Put(ctx, QuotaKey, b); err != nil && w.loopCtx.Err() == nil {
		w.noteQuotaFailure(fmt.Errorf("publish to %s: %w", QuotaBucket, err))
	}
}

// noteQuotaFailure logs a failed quota call once per kind: the errcode
// WeChat answered, or the kind of failure.
func (w *Worker) noteQuotaFailure(err error) {
	kind := "transport"
	var qe *pathupdate.QuotaError
	var te *pathupdate.TokenError
	switch {
	case errors.As(err, &qe):
		kind = fmt.Sprintf("errcode %d", qe.ErrCode)
	case errors.As(err, &te):
		kind = "access_token"
	}
	w.quota.mu.Lock()
	seen := w.quota.failures[kind]
	w.quota.failures[kind] = true
	w.quota.mu.Unlock()
	if !seen {
		w.log.Warn().Err(pathupdate.MaskPhonesError(err)).Str("kind", kind).
			Msg("getApiQuota failed: the quota stays as last known (logged once per kind)")
	}
}

// applyReading takes a published reading: the metrics, the automatic rate
// limit, and the pause of a spent quota.
func (w *Worker) applyReading(b []byte) {
	var r QuotaReading
	if err := json.Unmarshal(b, &r); err != nil {
		w.log.Warn().Err(err).Msg("quota reading unreadable: ignored")
		return
	}
	w.quota.mu.Lock()
	w.quota.reading = &r
	since := w.quota.since
	w.quota.mu.Unlock()
	if o, ok := w.cfg.Observer.(QuotaObserver); ok {
		o.QuotaSeen(r.Quota)
	}
	if w.cfg.RateLimitAuto {
		w.followRate(r.Quota)
	}
	switch {
	case r.Spent():
		w.pauseQuota(r.At, fmt.Sprintf("getApiQuota: %d of %d used", r.Used, r.DailyLimit))
	case !since.IsZero() && r.At.After(since):
		w.resumeQuota(fmt.Sprintf("getApiQuota: %d of %d remain", r.Remain, r.DailyLimit))
	}
}

// followRate sets the deployment's rate limit to what WeChat reports;
// with no rate reported there is no limit, said once.
func (w *Worker) followRate(q pathupdate.Quota) {
	per := q.RateLimit.PerSecond()
	w.rate.set(per, 0)
	w.quota.mu.Lock()
	say := per == 0 && !w.quota.noAuto
	w.quota.noAuto = per == 0
	w.quota.mu.Unlock()
	if say {
		w.log.Warn().Msg("--rate-limit auto: WeChat reports no rate_limit for logistics.updatePath; no rate limit until it does")
	} else if per > 0 {
		w.log.Debug().Float64("calls_per_second", per).Msg("rate limit follows WeChat's rate_limit")
	}
}
