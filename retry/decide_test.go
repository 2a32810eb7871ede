package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// class is what the contract says about an outcome, independently of the
// breaker and the budget.
type class int

const (
	classAck    class = iota + 1 // delivered
	classReject                  // dead-lettered as rejected at once
	classOwn                     // may be the event's own: spends budget when the API works for others
	classNever                   // never the event's: waits, never dead-lettered
)

// errRefused is what a dial to a closed port returns.
var errRefused = fmt.Errorf("dial tcp 127.0.0.1:1: connect: %w", syscall.ECONNREFUSED)

// decideOutcomes covers every way a call can end, as the client reports it.
var decideOutcomes = []struct {
	name  string
	o     pathupdate.Outcome
	class class
}{
	{"delivered", pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: http.StatusOK}, classAck},
	{"40199 waybill not found", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: pathupdate.ErrcodeWaybillNotFound, HTTPStatus: http.StatusOK}, classReject},
	{"9300507 incorrect token", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: pathupdate.ErrcodeIncorrectToken, HTTPStatus: http.StatusOK}, classReject},
	{"-1 system error", pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: pathupdate.ErrcodeSystemError, HTTPStatus: http.StatusOK}, classOwn},
	{"HTTP 503", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: http.StatusServiceUnavailable}, classOwn},
	{"answer not JSON", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: http.StatusOK, Err: errors.New("invalid character '<'")}, classOwn},
	{"unknown kind, answered", pathupdate.Outcome{Kind: pathupdate.Kind(99), HTTPStatus: http.StatusOK}, classOwn},
	{"connection refused", pathupdate.Outcome{Kind: pathupdate.Transient, Err: errRefused}, classNever},
	{"timeout", pathupdate.Outcome{Kind: pathupdate.Transient, Err: fmt.Errorf("post: %w", context.DeadlineExceeded)}, classNever},
	{"stable_token fetch refused", pathupdate.Outcome{Kind: pathupdate.Transient, Err: &pathupdate.TokenError{Op: "stable_token", Err: errRefused}}, classNever},
	{"stable_token fetch -1", pathupdate.Outcome{Kind: pathupdate.Transient, Err: &pathupdate.TokenError{Op: "stable_token", ErrCode: -1}}, classNever},
	{"token fetch 40125 invalid secret", pathupdate.Outcome{Kind: pathupdate.ConfigBroken, Err: &pathupdate.TokenError{Op: "stable_token", ErrCode: pathupdate.ErrcodeInvalidSecret}}, classNever},
	{"40001 access_token refused", pathupdate.Outcome{Kind: pathupdate.TokenInvalid, ErrCode: pathupdate.ErrcodeInvalidCredential, HTTPStatus: http.StatusOK}, classNever},
	{"40164 IP not whitelisted", pathupdate.Outcome{Kind: pathupdate.ConfigBroken, ErrCode: pathupdate.ErrcodeIPNotWhitelisted, HTTPStatus: http.StatusOK}, classNever},
	{"45009 daily quota", pathupdate.Outcome{Kind: pathupdate.Throttled, ErrCode: pathupdate.ErrcodeDailyQuota, HTTPStatus: http.StatusOK}, classNever},
	{"45011 minute quota", pathupdate.Outcome{Kind: pathupdate.Throttled, ErrCode: pathupdate.ErrcodeMinuteQuota, HTTPStatus: http.StatusOK}, classNever},
	{"open-interface 85113 not ready", pathupdate.Outcome{Kind: pathupdate.Unavailable, ErrCode: pathupdate.ErrcodeCloudbaseTokenPending, HTTPStatus: http.StatusOK}, classNever},
	{"open-interface gateway 502", pathupdate.Outcome{Kind: pathupdate.Unavailable, HTTPStatus: http.StatusBadGateway}, classNever},
	{"open-interface 85107 not whitelisted", pathupdate.Outcome{Kind: pathupdate.ConfigBroken, ErrCode: pathupdate.ErrcodePathNotWhitelisted, HTTPStatus: http.StatusOK}, classNever},
}

// TestDecide runs every outcome through every breaker state, with and
// without the API having answered another event since, at every attempt
// count of several budgets.
func TestDecide(t *testing.T) {
	t.Parallel()
	for _, budget := range []int{1, 2, 3, 10} {
		p := Policy{MaxAttempts: budget, RandomizationFactor: NoJitter}
		for _, oc := range decideOutcomes {
			for _, state := range []BreakerState{Closed, Open, HalfOpen} {
				for _, othersWorked := range []bool{true, false} {
					for attempts := 0; attempts < budget; attempts++ {
						in := Input{Outcome: oc.o, Verdict: Verdict{State: state, Worked: 7}, Mark: 7, Attempts: attempts}
						if othersWorked {
							in.Mark = 6
						}
						want := expectDecision(oc.class, state, othersWorked, attempts, budget)
						if got := p.Decide(in); got != want {
							t.Errorf("budget %d, %s, breaker %s, others worked %v, %d own failures before: Decide = %+v, want %+v",
								budget, oc.name, state, othersWorked, attempts, got, want)
						}
					}
				}
			}
		}
	}
}

// expectDecision is the contract's rule written out per class.
func expectDecision(c class, state BreakerState, othersWorked bool, attempts, budget int) Decision {
	wait := Decision{Action: Wait}
	if state == Closed {
		wait.Delay = InitialIntervalDefault // the breaker would let the next call through at once
	}
	switch c {
	case classAck:
		return Decision{Action: Ack}
	case classReject:
		return Decision{Action: DeadLetter, Reason: deadletter.ReasonRejected}
	case classOwn:
		if state != Closed || !othersWorked {
			return wait
		}
		if attempts+1 >= budget {
			return Decision{Action: DeadLetter, Reason: deadletter.ReasonRetriesExhausted, Spent: true}
		}
		return Decision{Action: Retry, Delay: InitialIntervalDefault, Spent: true}
	}
	return wait
}

// TestDecideNeverDeadLettersAnOutage walks one event through a long run of
// failures that are not its own, whatever the budget: the contract's
// "nothing is dead-lettered for an outage of any length".
func TestDecideNeverDeadLettersAnOutage(t *testing.T) {
	t.Parallel()
	for _, budget := range []int{1, 2, 10} {
		p := Policy{MaxAttempts: budget, RandomizationFactor: NoJitter, MaxInterval: time.Second}
		for _, oc := range decideOutcomes {
			if oc.class == classAck || oc.class == classReject {
				continue
			}
			in := Input{Backoff: p.NewBackOff(), Pause: p.NewBackOff()}
			for i := range 1000 {
				// An outage: the breaker closed for the first few calls, then
				// open or probing; nothing else gets through (Worked stays).
				state := []BreakerState{Closed, Closed, Closed, Closed, Open, HalfOpen}[min(i, 5)]
				in.Outcome, in.Verdict = oc.o, Verdict{State: state, Worked: in.Mark}
				d := p.Decide(in)
				if d.Action != Wait || d.Spent {
					t.Fatalf("budget %d, %s, failure %d: %+v, want wait without spending", budget, oc.name, i+1, d)
				}
			}
		}
	}
}

// TestDecideWaitDoesNotLengthenRetries: waiting draws from Input.Pause, so
// an event's own retries start at InitialInterval after any pause.
func TestDecideWaitDoesNotLengthenRetries(t *testing.T) {
	t.Parallel()
	p := Policy{RandomizationFactor: NoJitter, MaxAttempts: 100}
	in := Input{Backoff: p.NewBackOff(), Pause: p.NewBackOff()}
	in.Outcome = pathupdate.Outcome{Kind: pathupdate.Transient, Err: errRefused}
	var pauses []time.Duration
	for range 3 {
		pauses = append(pauses, p.Decide(in).Delay)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}; fmt.Sprint(pauses) != fmt.Sprint(want) {
		t.Fatalf("pause delays %v, want %v (a pause backs off too)", pauses, want)
	}
	in.Outcome = pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: -1, HTTPStatus: http.StatusOK}
	in.Verdict, in.Mark = Verdict{State: Closed, Worked: 1}, 0
	if d := p.Decide(in); d.Action != Retry || d.Delay != InitialIntervalDefault {
		t.Fatalf("first own failure after pauses: %+v, want retry in %s", d, InitialIntervalDefault)
	}
}

func TestDecideInvalidEvent(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("%w: token is missing", pathupdate.ErrInvalidEvent)
	for _, oc := range decideOutcomes {
		d := Policy{}.Decide(Input{Invalid: err, Outcome: oc.o, Verdict: Verdict{State: Closed, Worked: 1}})
		if d != (Decision{Action: DeadLetter, Reason: deadletter.ReasonInvalidEvent}) {
			t.Fatalf("invalid event (outcome %s): %+v, want dead letter invalid_event", oc.name, d)
		}
	}
}

// TestDecideReasonsAreDeadLetterReasons: a reason Decide returns that a
// dead-letter record refused would block the waybill forever.
func TestDecideReasonsAreDeadLetterReasons(t *testing.T) {
	t.Parallel()
	p := Policy{MaxAttempts: 1}
	ins := []Input{
		{Invalid: pathupdate.ErrInvalidEvent},
		{Outcome: decideOutcomes[1].o},
		{Outcome: decideOutcomes[3].o, Verdict: Verdict{State: Closed, Worked: 1}},
	}
	seen := map[string]bool{}
	for _, in := range ins {
		d := p.Decide(in)
		if d.Action != DeadLetter {
			t.Fatalf("Decide(%+v) = %+v, want a dead letter", in, d)
		}
		rec := deadletter.Record{Reason: d.Reason, WaybillID: "W1", OriginalSubject: "0.logistics.trace.W1", OriginalSeq: 1, FailedAt: time.Unix(1, 0)}
		if err := rec.Validate(); err != nil {
			t.Fatalf("reason %q: the dead-letter record refuses it: %v", d.Reason, err)
		}
		seen[d.Reason] = true
	}
	for _, r := range deadletter.Reasons() {
		if !seen[r] {
			t.Errorf("deadletter reason %q is never decided", r)
		}
	}
}

func TestDecideDelayGrowthAndCap(t *testing.T) {
	t.Parallel()
	p := Policy{RandomizationFactor: NoJitter, MaxAttempts: 100}
	in := Input{Backoff: p.NewBackOff(), Outcome: decideOutcomes[3].o, Verdict: Verdict{State: Closed, Worked: 1}}
	want := []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for i, w := range want {
		in.Attempts = i
		d := p.Decide(in)
		if d.Action != Retry || d.Delay != w {
			t.Fatalf("retry %d: %+v, want retry in %s", i+1, d, w)
		}
	}
}

func TestDecideJitterBounds(t *testing.T) {
	t.Parallel()
	p := Policy{InitialInterval: 100 * time.Millisecond, MaxInterval: 800 * time.Millisecond, RandomizationFactor: 0.5, MaxAttempts: 100}
	base := []time.Duration{100, 200, 400, 800, 800} // ms, before jitter
	const runs = 400
	for step, ms := range base {
		cur := ms * time.Millisecond
		lo, hi := cur/2, cur*3/2
		minSeen, maxSeen := hi, lo
		for range runs {
			in := Input{Backoff: p.NewBackOff(), Outcome: decideOutcomes[3].o, Verdict: Verdict{State: Closed, Worked: 1}}
			var d Decision
			for i := 0; i <= step; i++ {
				d = p.Decide(in)
			}
			if d.Delay < lo || d.Delay > hi {
				t.Fatalf("step %d: delay %s outside [%s, %s]", step, d.Delay, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d.Delay), max(maxSeen, d.Delay)
		}
		// Uniform over [lo, hi]: with 400 draws both outer quarters are hit
		// except with probability ~2*(3/4)^400.
		if minSeen > lo+(hi-lo)/4 || maxSeen < hi-(hi-lo)/4 {
			t.Fatalf("step %d: delays %s..%s do not spread over [%s, %s]", step, minSeen, maxSeen, lo, hi)
		}
	}
}

func TestDecideBackOffStop(t *testing.T) {
	t.Parallel()
	in := Input{Backoff: &backoff.StopBackOff{}, Outcome: decideOutcomes[3].o, Verdict: Verdict{State: Closed, Worked: 1}}
	if got := (Policy{}).Decide(in); got.Action != DeadLetter || got.Reason != deadletter.ReasonRetriesExhausted {
		t.Fatalf("BackOff said Stop: %+v, want retries_exhausted", got)
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	for a, want := range map[Action]string{Ack: "ack", DeadLetter: "dead_letter", Retry: "retry", Wait: "wait", 0: "action(0)"} {
		if a.String() != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), a.String(), want)
		}
	}
	for s, want := range map[BreakerState]string{Closed: "closed", Open: "open", HalfOpen: "half_open"} {
		if s.String() != want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
