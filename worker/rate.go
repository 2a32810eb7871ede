package worker

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimitMax bounds Config.RateLimit: far above any frequency limit
// WeChat grants, so a value beyond it is a typing error.
const RateLimitMax = 100_000

// RateLimitAuto is the --rate-limit value that follows the rate_limit
// WeChat reports through getApiQuota.
const RateLimitAuto = "auto"

// ParseRateLimit reads a rate limit setting: "0" (none), a number of
// calls per second for the whole deployment, or "auto". The error names
// what is wrong; the caller names the setting.
func ParseRateLimit(s string) (perSecond float64, auto bool, err error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, RateLimitAuto) {
		return 0, true, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q is neither a number of calls per second nor %q", s, RateLimitAuto)
	}
	if p := rateLimitProblem(v); p != "" {
		return 0, false, fmt.Errorf("%s", p)
	}
	return v, false, nil
}

// rateLimitProblem says what is wrong with a rate of v calls per second,
// "" when nothing is.
func rateLimitProblem(v float64) string {
	switch {
	case math.IsNaN(v) || v < 0:
		return fmt.Sprintf("%v: use 0 (no limit) or a positive number of calls per second", v)
	case v > RateLimitMax:
		return fmt.Sprintf("%v calls per second is beyond any WeChat limit: use at most %d", v, RateLimitMax)
	}
	return ""
}

// rateShare is this worker's share of the deployment's rate limit: the
// total divided by the live members, so the sum holds without a central
// lock. The limiter lets one call through at a time (burst 1), evenly
// spaced, never a second's worth at once.
type rateShare struct {
	lim *rate.Limiter
	// turn lets one caller at a time reserve from lim: with hundreds of
	// lanes waiting, reservations made at once would book seconds ahead at
	// the old rate, and a new share would take effect only after them.
	turn chan struct{}

	mu      sync.Mutex
	total   float64 // calls per second for the deployment; 0: none
	members int
}

func newRateShare(total float64) *rateShare {
	r := &rateShare{lim: rate.NewLimiter(rate.Inf, 1), turn: make(chan struct{}, 1), members: 1}
	r.set(total, 1)
	return r
}

// set changes the total, the number of live members, or both (a value
// below 0 keeps the current one), and the limiter with them.
func (r *rateShare) set(total float64, members int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if total >= 0 {
		r.total = total
	}
	if members > 0 {
		r.members = members
	}
	if r.total == 0 {
		r.lim.SetLimit(rate.Inf)
		return
	}
	r.lim.SetLimit(rate.Limit(r.total / float64(r.members)))
}

// share is the calls per second this worker may make; 0 means no limit.
func (r *rateShare) share() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.total == 0 {
		return 0
	}
	return r.total / float64(r.members)
}

// wait blocks until the limiter lets one call through or ctx ends, and
// returns how long it waited.
func (r *rateShare) wait(ctx context.Context) (time.Duration, error) {
	if r.lim.Limit() == rate.Inf {
		return 0, ctx.Err()
	}
	start := time.Now()
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
	err := r.lim.Wait(ctx)
	<-r.turn
	return time.Since(start), err
}
