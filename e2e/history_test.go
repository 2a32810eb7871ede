package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// cliRun runs the binary and returns its exit code and output.
func cliRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestTraceTellsTheWholeStory: a waybill's event meets -1 twice, then 40199
// (the waybill is not registered yet) and is dead-lettered; the order is
// registered, the dead letter replayed and delivered; a later event is
// delivered. `pathupdate trace` shows every step in order, with attempts,
// errcodes and the dead letter's sequence, and --json parses.
func TestTraceTellsTheWholeStory(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	sb := sandbox.NewServer(sandbox.Config{Seed: 1, Orders: map[string]string{"OTHER1": "tok-other-0001"}})
	t.Cleanup(sb.Close)
	const wb = "SF7000001"
	sb.SetFaults(sandbox.Faults{SystemErrorWaybills: []string{wb}})
	startWorker(t, s.ClientURL(), sb, "--retry-initial", "100ms", "--retry-max", "100ms")
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(waybill, token, msg string, i int) pathupdate.Event {
		return pathupdate.Event{Token: token, WaybillID: waybill, ActionTime: 1_767_225_600 + int64(i), ActionType: pathupdate.ActionInTransit, ActionMsg: msg}
	}
	if _, err := pub.Publish(ctx, ev(wb, "tok-sf7-000001", "in transit", 0)); err != nil {
		t.Fatal(err)
	}
	// Other traffic shows the API works, so the -1 answers are the event's own.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; len(sb.Calls(wb)) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the event met -1 %d times within 60 s, want 2", len(sb.Calls(wb)))
		}
		if _, err := pub.Publish(ctx, ev("OTHER1", "tok-other-0001", fmt.Sprintf("other %d", i), i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // pace, not synchronisation
	}
	sb.SetFaults(sandbox.Faults{}) // the next attempt meets 40199: the waybill is unknown
	waitUntil(t, "the event dead-lettered", 60*time.Second, func() bool { return streamMsgs(ctx, js, pathupdate.DeadLetterStream) == 1 })

	sb.AddOrder(wb, "tok-sf7-000001")
	if code, out, errOut := cliRun(t, "deadletter", "replay", "--nats-url", s.ClientURL(), "--waybill", wb, "--yes"); code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	waitUntil(t, "the replayed event delivered", 60*time.Second, func() bool { return len(sb.Delivered(wb)) == 1 })
	if _, err := pub.Publish(ctx, ev(wb, "tok-sf7-000001", "signed", 1)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second event delivered", 60*time.Second, func() bool { return len(sb.Delivered(wb)) == 2 })

	// History is written asynchronously: wait for the last record.
	var lines []map[string]any
	waitUntil(t, "four steps in the timeline", 30*time.Second, func() bool {
		code, out, _ := cliRun(t, "trace", "--nats-url", s.ClientURL(), "--json", wb)
		if code != 0 {
			return false
		}
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("trace --json line %q: %v", l, err)
			}
			if m["state"] != "retrying" {
				lines = append(lines, m)
			}
		}
		return len(lines) >= 4
	})
	got := ""
	for _, m := range lines {
		got += fmt.Sprintf("%v %v a%v e%v|", m["action_msg"], m["state"], m["attempts"], m["errcode"])
	}
	want := "in transit dead_lettered a3 e40199|in transit replayed a0 e0|in transit delivered a1 e0|signed delivered a1 e0|"
	if got != want {
		t.Fatalf("timeline\n got %s\nwant %s", got, want)
	}
	dead, replayed, copyDelivered := lines[0], lines[1], lines[2]
	if dead["dead_letter_seq"] == nil || dead["dead_letter_seq"] != replayed["dead_letter_seq"] {
		t.Errorf("the replay does not name the dead letter: %v / %v", dead, replayed)
	}
	if replayed["replay_of"] != dead["seq"] || replayed["seq"] != copyDelivered["seq"] {
		t.Errorf("the replay does not link the original %v to the copy %v: %v", dead["seq"], copyDelivered["seq"], replayed)
	}

	code, out, errOut := cliRun(t, "trace", "--nats-url", s.ClientURL(), wb)
	if code != 0 || !strings.Contains(out, "dead_lettered") || !strings.Contains(out, "replayed") || strings.Count(out, "delivered") < 2 {
		t.Fatalf("trace: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cliRun(t, "trace", "--nats-url", s.ClientURL(), "NOSUCH1"); code != 1 || !strings.Contains(errOut, "no record of waybill NOSUCH1 since") {
		t.Fatalf("trace of an unknown waybill: exit %d %q", code, errOut)
	}
	if code, _, _ := cliRun(t, "trace", "--nats-url", s.ClientURL(), "bad.id"); code != 2 {
		t.Fatalf("trace of an invalid id: exit %d, want 2", code)
	}
}

// TestHistoryOff: --history-max-age 0 creates no history stream and trace
// says so.
func TestHistoryOff(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	sb := sandbox.NewServer(sandbox.Config{Seed: 1, AcceptAnyWaybill: true})
	t.Cleanup(sb.Close)
	startWorker(t, s.ClientURL(), sb, "--history-max-age", "0")
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the worker's streams", 30*time.Second, func() bool { return streamMsgs(ctx, js, pathupdate.TraceStream) == 0 })
	if _, err := pub.Publish(ctx, pathupdate.Event{Token: "t", WaybillID: "W1", ActionTime: 1, ActionType: pathupdate.ActionPickedUp, ActionMsg: "m"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "delivered", 30*time.Second, func() bool { return len(sb.Delivered("W1")) == 1 })
	if _, err := js.Stream(ctx, "LOGISTICS_HISTORY"); err == nil {
		t.Fatal("history off, yet the history stream exists")
	}
	if code, _, errOut := cliRun(t, "trace", "--nats-url", s.ClientURL(), "W1"); code != 1 || !strings.Contains(errOut, "history is off") {
		t.Fatalf("trace with history off: exit %d %q", code, errOut)
	}
}
