package cli_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestDeadletterReplaySkipsInvalidEvents: replay --reason invalid_event
// used to republish events that come straight back; it now skips them,
// says how many and why, and replays them with --include-invalid.
func TestDeadletterReplaySkipsInvalidEvents(t *testing.T) {
	url, js := deadLetters(t)
	w := deadletter.NewWriter(js, deadletter.WriterConfig{})
	if err := w.Write(context.Background(), deadletter.Record{Event: []byte(`{"waybill_id":"W3"}`), WaybillID: "W3",
		Reason: deadletter.ReasonInvalidEvent, ErrMsg: "invalid event", OriginalSubject: "0.logistics.trace.W3", OriginalSeq: 200}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(context.Background(), "", "deadletter", "replay", "--reason", "invalid_event", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "replayed 0 ") || !strings.Contains(stdout, "1 skipped because its event is not valid") ||
		!strings.Contains(stdout, "--include-invalid") {
		t.Fatalf("replay of invalid events: exit %d\n%s%s", code, stdout, stderr)
	}
	if dl, tr := streamMsgs(t, js, pathupdate.DeadLetterStream), streamMsgs(t, js, pathupdate.TraceStream); dl != 4 || tr != 0 {
		t.Fatalf("after the replay: %d dead letters, %d trace events; want 4 and 0", dl, tr)
	}
	code, stdout, stderr = run(context.Background(), "", "deadletter", "replay", "--reason", "invalid_event", "--include-invalid", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "replayed 1 ") {
		t.Fatalf("replay --include-invalid: exit %d\n%s%s", code, stdout, stderr)
	}
	if tr := streamMsgs(t, js, pathupdate.TraceStream); tr != 1 {
		t.Fatalf("%d trace events after replay --include-invalid, want 1", tr)
	}
}

// TestDeadletterTwoReplaysAtOnce: two `deadletter replay --errcode 40199`
// at once over the same 300 dead letters both exit 0 (one used to exit 1
// with "message deletion unsuccessful ... err_code=10043"), and each
// event is stored once.
func TestDeadletterTwoReplaysAtOnce(t *testing.T) {
	url, js := deadLetters(t) // seq 1 is a 40199 of W1
	w := deadletter.NewWriter(js, deadletter.WriterConfig{})
	at := time.Now().Add(-time.Minute)
	for i := range 299 {
		waybill := fmt.Sprintf("R%02d", i%30)
		if err := w.Write(context.Background(), deadletter.Record{Event: []byte(line(waybill, "tok", i+2)), WaybillID: waybill,
			Reason: deadletter.ReasonRejected, ErrCode: 40199, OriginalSubject: "0.logistics.trace." + waybill, OriginalSeq: uint64(1000 + i), FailedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	codes, outs := make([]int, 2), make([]string, 2)
	for i := range 2 {
		wg.Go(func() {
			var stdout, stderr string
			codes[i], stdout, stderr = run(context.Background(), "", "deadletter", "replay", "--errcode", "40199", "--nats-url", url)
			outs[i] = stdout + stderr
		})
	}
	wg.Wait()
	for i := range 2 {
		if codes[i] != 0 {
			t.Errorf("replay %d: exit %d\n%s", i, codes[i], outs[i])
		}
	}
	if dl, tr := streamMsgs(t, js, pathupdate.DeadLetterStream), streamMsgs(t, js, pathupdate.TraceStream); dl != 2 || tr != 300 {
		t.Fatalf("after two replays: %d dead letters, %d trace events; want 2 (not 40199) and 300", dl, tr)
	}
}
