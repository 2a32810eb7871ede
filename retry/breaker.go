package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// BreakerState is the state of a Breaker.
type BreakerState int

const (
	// Closed: calls go through.
	Closed BreakerState = iota
	// Open: calls wait until the open period ends.
	Open
	// HalfOpen: one probe call is out; everyone else waits for its result.
	HalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("breaker_state(%d)", int(s))
}

// Breaker defaults.
const (
	ThresholdDefault    = 5
	OpenInitialDefault  = time.Second
	OpenMaxDefault      = 30 * time.Second
	ProbeTimeoutDefault = time.Minute
	// OpenMaxLimit bounds BreakerConfig.OpenMax.
	OpenMaxLimit = 24 * time.Hour
	// MinuteQuotaJitter bounds the random delay added after the next minute
	// starts when WeChat answers 45011, so that many workers do not all
	// probe in the same millisecond.
	MinuteQuotaJitter = time.Second
)

// BreakerConfig configures a Breaker. Zero fields take their defaults.
type BreakerConfig struct {
	// Threshold is how many consecutive failures that are not specific to
	// an event open the breaker. Default 5.
	Threshold int
	// OpenInitial is the first open period. Default 1s.
	OpenInitial time.Duration
	// OpenMax caps the open period, which doubles on each failed probe.
	// Default 30s.
	OpenMax time.Duration
	// ProbeTimeout is how long the probe may stay out without Record or
	// Release before another waiter is let through as the probe: a lost
	// probe (a panic, a forgotten Release) must not pause delivery forever.
	// Default 1m.
	ProbeTimeout time.Duration
	// Now is the clock. Default time.Now. Waiting uses real timers; with an
	// injected clock a waiter re-reads Now when its timer fires.
	Now func() time.Time
	// Logger receives state changes. Default: no logging.
	Logger zerolog.Logger
	// OnChange, when set, is called on every state change, outside the
	// breaker's lock and in the order the changes happened.
	OnChange func(from, to BreakerState)
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.Threshold == 0 {
		c.Threshold = ThresholdDefault
	}
	if c.OpenInitial == 0 {
		c.OpenInitial = OpenInitialDefault
	}
	if c.OpenMax == 0 {
		c.OpenMax = max(OpenMaxDefault, c.OpenInitial)
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = ProbeTimeoutDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks a config after WithDefaults and reports every field
// that cannot work as a pathupdate.FieldError.
func (c BreakerConfig) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "retry: BreakerConfig."}
	if c.Threshold < 1 {
		errs.Add("Threshold", "%d: use at least 1 (default %d)", c.Threshold, ThresholdDefault)
	}
	if c.OpenInitial <= 0 {
		errs.Add("OpenInitial", "%s: use a positive duration (default %s)", c.OpenInitial, OpenInitialDefault)
	}
	switch {
	case c.OpenMax < c.OpenInitial:
		errs.Add("OpenMax", "%s is below OpenInitial %s: raise it (default %s)", c.OpenMax, c.OpenInitial, OpenMaxDefault)
	case c.OpenMax > OpenMaxLimit:
		// WeChat's longest quota is a day (45009); an open period beyond
		// it would pause delivery for longer than any answer asks for.
		errs.Add("OpenMax", "%s: use at most %s (default %s)", c.OpenMax, OpenMaxLimit, OpenMaxDefault)
	}
	if c.ProbeTimeout <= 0 {
		errs.Add("ProbeTimeout", "%s: use a positive duration (default %s)", c.ProbeTimeout, ProbeTimeoutDefault)
	}
	return errs.Err()
}

// Breaker pauses all calls while the API fails for every event, and lets
// one probe call find out when it works again. It is safe for concurrent
// use.
//
// Protocol: every caller Waits before a call; a caller that Wait let
// through then calls exactly one of Record (with the call's outcome) or
// Release (no outcome, e.g. its context ended).
type Breaker struct {
	cfg BreakerConfig

	mu            sync.Mutex
	state         BreakerState
	failures      int           // consecutive failures while closed
	period        time.Duration // the open period last used; doubles on a failed probe
	openUntil     time.Time     // when Open: the first probe may go at this time
	probing       bool          // when HalfOpen: the probe is out
	probeDeadline time.Time     // when probing: presumed lost after this
	worked        uint64        // event-specific answers recorded so far
	cause         string        // the outcome that last opened it, for Why
	changed       chan struct{} // closed and replaced whenever waiters should look again
	pending       []transition  // state changes not yet told to Logger/OnChange
	notifying     bool          // a goroutine is draining pending
}

type transition struct {
	from, to BreakerState
	cause    string    // the outcome that caused it, for the log
	until    time.Time // end of the open period when to is Open
}

// NewBreaker returns a closed breaker. It applies WithDefaults and panics if
// the result does not Validate: whoever builds a BreakerConfig from
// settings validates it first (worker.Config.Validate covers its Breaker),
// so a bad one reaching here is a programming error.
func NewBreaker(cfg BreakerConfig) *Breaker {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Breaker{cfg: cfg, changed: make(chan struct{})}
}

// State reports the current state. An open breaker whose period has ended
// stays Open until a caller of Wait becomes the probe.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Why says why the breaker is not closed: the outcome that last opened it
// (no secret: outcomes are scrubbed). It is "" while closed.
func (b *Breaker) Why() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Closed {
		return ""
	}
	return b.cause
}

// OpenUntil reports when the current open period ends (zero unless Open),
// for readiness reports and logs.
func (b *Breaker) OpenUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Open {
		return time.Time{}
	}
	return b.openUntil
}

// Wait returns nil at once when the breaker is closed. When it is open it
// blocks until the open period ends, then lets exactly one caller through
// as the probe while the others wait for the probe's result: a success
// closes the breaker and lets them all through, a failure opens it again.
// It returns ctx.Err() if ctx ends first.
func (b *Breaker) Wait(ctx context.Context) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		now := b.cfg.Now()
		var wake time.Duration
		switch b.state {
		case Closed:
			b.mu.Unlock()
			return nil
		case Open:
			if !now.Before(b.openUntil) {
				b.setStateLocked(HalfOpen, "", time.Time{})
				b.probing = true
				b.probeDeadline = now.Add(b.cfg.ProbeTimeout)
				b.mu.Unlock()
				b.notify()
				return nil
			}
			wake = b.openUntil.Sub(now)
		case HalfOpen:
			if !b.probing || !now.Before(b.probeDeadline) {
				if b.probing {
					b.cfg.Logger.Warn().Dur("probe_timeout", b.cfg.ProbeTimeout).
						Msg("circuit breaker: probe gave no result in time, sending another")
				}
				b.probing = true
				b.probeDeadline = now.Add(b.cfg.ProbeTimeout)
				b.mu.Unlock()
				return nil
			}
			wake = b.probeDeadline.Sub(now)
		}
		changed := b.changed
		b.mu.Unlock()

		if err := ctx.Err(); err != nil {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(wake)
		} else {
			timer.Reset(wake) // Go >= 1.23: Reset after Stop needs no drain
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Release gives back the probe slot of a caller that Wait let through and
// that will not Record (its context ended before an answer). It is a no-op
// unless the breaker is half-open; a caller that was not the probe must
// still call it rather than Record, and at worst a second probe goes out.
func (b *Breaker) Release() {
	b.mu.Lock()
	if b.state == HalfOpen && b.probing {
		b.probing = false
		b.broadcastLocked()
	}
	b.mu.Unlock()
}

// Verdict is what the breaker made of one recorded outcome: its state
// afterwards, and how many event-specific answers (delivered, rejected) it
// has recorded so far. Policy.Decide reads both: a failure is the event's
// own only while the breaker is closed and after the API answered some
// other event.
type Verdict struct {
	State  BreakerState
	Worked uint64
}

// Worked reports how many event-specific answers the breaker has recorded:
// a mark to compare a later Verdict.Worked with.
func (b *Breaker) Worked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.worked
}

// Record takes the outcome of a call that Wait let through.
//
// Event-specific answers (Delivered, Rejected) prove the API works: they
// close the breaker. Every other Kind is a failure. While closed, Threshold
// consecutive failures open it; ConfigBroken, 45009 (daily quota, OpenMax)
// and 45011 (minute quota, until the next wall-clock minute) open it at
// once. A failure while half-open opens it again for twice the last period,
// up to OpenMax.
func (b *Breaker) Record(o pathupdate.Outcome) Verdict {
	b.mu.Lock()
	defer b.notify()
	defer b.mu.Unlock()
	b.recordLocked(o)
	return Verdict{State: b.state, Worked: b.worked}
}

func (b *Breaker) recordLocked(o pathupdate.Outcome) {
	now := b.cfg.Now()
	if o.Kind.EventSpecific() {
		b.worked++
		b.failures = 0
		b.period = 0
		if b.state != Closed {
			b.probing = false
			b.setStateLocked(Closed, o.String(), time.Time{})
		}
		return
	}

	switch b.state {
	case Closed:
		b.failures++
		p := b.cfg.OpenInitial
		until, at, immediate := b.quotaOpenLocked(o, now, p)
		switch {
		case immediate:
			b.openLocked(until, at, o)
		case o.Kind == pathupdate.ConfigBroken || b.failures >= b.cfg.Threshold:
			b.openLocked(now.Add(p), p, o)
		}
	case HalfOpen:
		// The probe failed (or a call from before the breaker opened
		// finished now; either way the API failed recently).
		p := min(2*b.period, b.cfg.OpenMax)
		until, at, immediate := b.quotaOpenLocked(o, now, p)
		if !immediate {
			until, at = now.Add(p), p
		}
		b.openLocked(until, at, o)
	case Open:
		// A call from before the breaker opened: already accounted for,
		// unless it carries a quota answer that reaches further out.
		if until, at, immediate := b.quotaOpenLocked(o, now, b.period); immediate && until.After(b.openUntil) {
			b.openUntil, b.period = until, at
			b.cfg.Logger.Warn().Str("cause", o.String()).Time("until", until).
				Msg("circuit breaker: open period extended")
		}
	}
}

// quotaOpenLocked says whether o is a quota answer that opens the breaker at
// once, until when, and the period to double from on a later failed probe
// (p unless the quota sets its own).
func (b *Breaker) quotaOpenLocked(o pathupdate.Outcome, now time.Time, p time.Duration) (until time.Time, period time.Duration, ok bool) {
	if o.Kind != pathupdate.Throttled {
		return time.Time{}, 0, false
	}
	switch o.ErrCode {
	case pathupdate.ErrcodeMinuteQuota:
		// WeChat says "try next minute": the quota is per wall-clock minute.
		next := now.Truncate(time.Minute).Add(time.Minute)
		return next.Add(rand.N(MinuteQuotaJitter)), p, true
	case pathupdate.ErrcodeDailyQuota:
		return now.Add(b.cfg.OpenMax), b.cfg.OpenMax, true
	}
	return time.Time{}, 0, false
}

func (b *Breaker) openLocked(until time.Time, period time.Duration, o pathupdate.Outcome) {
	b.cause = o.String()
	b.failures = 0
	b.period = period
	b.openUntil = until
	b.probing = false
	b.setStateLocked(Open, o.String(), until)
}

// setStateLocked changes the state, wakes the waiters, and queues the change
// for notify.
func (b *Breaker) setStateLocked(to BreakerState, cause string, until time.Time) {
	from := b.state
	b.state = to
	b.broadcastLocked()
	b.pending = append(b.pending, transition{from: from, to: to, cause: cause, until: until})
}

func (b *Breaker) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}
