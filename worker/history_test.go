package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestHistoryRecordsEverySettlement: a delivered event, a rejected one and
// one delivered after retries each leave their record, and the timeline
// tells the story with attempts, errcodes and the dead letter's sequence.
func TestHistoryRecordsEverySettlement(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{})
	ctx := context.Background()
	if err := history.EnsureStream(ctx, b.js, history.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	hw, err := history.NewWriter(b.js, history.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hw.Close(context.Background()) })
	// SF1's first two calls answer -1 (the sandbox fails the waybill until
	// the test lifts it), while OTHER's events show the API works.
	b.sb.SetFaults(sandbox.Faults{SystemErrorWaybills: []string{"SF1"}})
	obs := &deadLetterObserver{dead: make(chan worker.Settlement, 1)}
	b.startWorker(t, worker.Config{
		Retry:    retry.Policy{InitialInterval: 50 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 100, RandomizationFactor: retry.NoJitter},
		History:  hw,
		Observer: obs,
	})
	b.sb.AddOrder("SF1", "tok-sf1-0001")
	b.sb.AddOrder("OTHER", "tok-other-01")
	ev := func(wb, tok, msg string, i int) pathupdate.Event {
		return pathupdate.Event{Token: tok, WaybillID: wb, ActionTime: 1_767_225_600 + int64(i), ActionType: pathupdate.ActionInTransit, ActionMsg: msg}
	}
	if _, err := b.pub.Publish(ctx, ev("SF1", "tok-sf1-0001", "in transit", 0)); err != nil {
		t.Fatal(err)
	}
	// Keep other traffic going until SF1 has failed twice on its own.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; len(b.sb.Calls("SF1")) < 3; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("SF1 was not retried within 30 s (%d calls)", len(b.sb.Calls("SF1")))
		}
		if _, err := b.pub.Publish(ctx, ev("OTHER", "tok-other-01", fmt.Sprintf("other %d", i), i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // pace, not synchronisation: the loop ends on SF1's calls
	}
	b.sb.SetFaults(sandbox.Faults{})
	// A step with a token WeChat does not know for the waybill: 9300507.
	if _, err := b.pub.Publish(ctx, ev("SF1", "wrong-token-xx", "out for delivery", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-obs.dead:
		if s.Reason != deadletter.ReasonRejected {
			t.Fatalf("dead-lettered as %+v, want rejected", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the rejected event was not dead-lettered")
	}
	b.waitSettled(t, 30*time.Second)
	if err := hw.Close(ctx); err != nil {
		t.Fatal(err)
	}

	tl, err := history.NewStore(b.js, nil).Timeline(ctx, "SF1")
	if err != nil {
		t.Fatal(err)
	}
	var settled []history.Step
	for _, s := range tl.Steps {
		if s.State != history.Retrying {
			settled = append(settled, s)
		}
	}
	if len(settled) != 2 {
		t.Fatalf("timeline %+v, want a delivery and a dead letter", tl.Steps)
	}
	d, r := settled[0], settled[1]
	if d.State != history.Delivered || d.ActionMsg != "in transit" || d.Attempts < 3 || d.ErrCode != 0 {
		t.Errorf("first step %+v, want in transit delivered after at least 3 attempts", d)
	}
	if r.State != history.DeadLettered || r.ErrCode != pathupdate.ErrcodeIncorrectToken || r.DeadLetterSeq == 0 || r.Attempts != 1 {
		t.Errorf("second step %+v, want dead_lettered 9300507 with its dead-letter sequence", r)
	}
	if dls := b.deadLetters(t); len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
}
