package retry_test

import (
	"fmt"
	"net/http"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Decide is the one place an answer becomes an action. A worker records
// each outcome with its Breaker and carries out the decision.
func ExamplePolicy_Decide() {
	p := retry.Policy{MaxAttempts: 2, RandomizationFactor: retry.NoJitter}
	b := retry.NewBreaker(retry.BreakerConfig{})
	in := retry.Input{Backoff: p.NewBackOff(), Pause: p.NewBackOff(), Mark: b.Worked()}

	// Another event was delivered meanwhile: the API works.
	b.Record(pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: http.StatusOK})

	// WeChat answers -1 to this event, twice.
	systemError := pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: -1, HTTPStatus: http.StatusOK}
	for range 2 {
		in.Outcome, in.Verdict = systemError, b.Record(systemError)
		d := p.Decide(in)
		fmt.Println(d)
		if d.Spent {
			in.Attempts++
		}
		in.Mark = in.Verdict.Worked
		b.Record(pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: http.StatusOK}) // others go on
	}

	// A refused connection is never the event's fault, whatever its budget.
	refused := pathupdate.Outcome{Kind: pathupdate.Transient, Err: fmt.Errorf("connect: connection refused")}
	in.Attempts = 0
	in.Outcome, in.Verdict = refused, b.Record(refused)
	fmt.Println(p.Decide(in))
	// Output:
	// retry in 500ms
	// dead_letter: retries_exhausted
	// wait in 500ms
}
