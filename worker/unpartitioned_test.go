package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestWildcardSubjectsAreDeadLettered: `nats pub --jetstream
// 'logistics.trace.*' ...` gets a PubAck and is stored without a
// partition, where no partition consumer sees it. The workers dead-letter
// it as invalid_event, so nothing stays in the stream unseen.
func TestWildcardSubjectsAreDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{AcceptAnyWaybill: true})
	ctx := context.Background()
	body, err := json.Marshal(pathupdate.Event{Token: "tok", WaybillID: "W1", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "m"})
	if err != nil {
		t.Fatal(err)
	}
	subjects := []string{pathupdate.TraceSubjectPrefix + "*", pathupdate.TraceSubjectPrefix + ">"}
	for _, subj := range subjects {
		if _, err := b.js.Publish(ctx, subj, body); err != nil {
			t.Fatalf("publish to %s: %v", subj, err)
		}
	}
	obs := &deadLetterObserver{dead: make(chan worker.Settlement, len(subjects))}
	b.startWorker(t, worker.Config{Observer: obs})
	for range subjects {
		select {
		case s := <-obs.dead:
			if s.Reason != deadletter.ReasonInvalidEvent {
				t.Fatalf("settled as %+v, want invalid_event", s)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a message on a wildcard subject was not dead-lettered within 30 s")
		}
	}
	b.waitSettled(t, 10*time.Second)
	dls := b.deadLetters(t)
	if len(dls) != len(subjects) {
		t.Fatalf("%d dead letters, want %d", len(dls), len(subjects))
	}
	seen := map[string]bool{}
	for _, r := range dls {
		if r.Reason != deadletter.ReasonInvalidEvent || string(r.Event) != string(body) {
			t.Fatalf("dead letter %+v, want invalid_event with the original bytes", r)
		}
		seen[r.OriginalSubject] = true
	}
	for _, subj := range subjects {
		if !seen[subj] {
			t.Errorf("no dead letter names original subject %q", subj)
		}
	}
}
