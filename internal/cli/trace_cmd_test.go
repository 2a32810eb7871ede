package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestTrace(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	url := s.ClientURL()

	for _, bad := range []string{"a.b", "*", "Üñ"} {
		if code, _, stderr := run(ctx, "", "trace", "--nats-url", url, bad); code != 2 || !strings.Contains(stderr, "not a waybill id") {
			t.Errorf("trace %q: exit %d %q, want 2 and why", bad, code, stderr)
		}
	}
	if code, _, stderr := run(ctx, "", "trace", "--nats-url", url); code != 2 {
		t.Errorf("trace without a waybill: exit %d %q, want 2", code, stderr)
	}
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(ctx, "", "trace", "--nats-url", url, "SF1"); code != 1 || !strings.Contains(stderr, "history is off") {
		t.Fatalf("trace without a history stream: exit %d %q, want 1 saying history is off", code, stderr)
	}
	if err := history.EnsureStream(ctx, js, history.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(ctx, "", "trace", "--nats-url", url, "SF1"); code != 1 || !strings.Contains(stderr, "no record of waybill SF1 since") {
		t.Fatalf("trace of an unknown waybill: exit %d %q, want 1 saying how far back it looked", code, stderr)
	}

	hw, err := history.NewWriter(js, history.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := pathupdate.Event{Token: "token-abcd1234", WaybillID: "SF1", ActionTime: 1_767_225_600, ActionType: pathupdate.ActionInTransit, ActionMsg: "call 13800138000"}
	hw.Add(history.Record{State: history.DeadLettered, Seq: 99, Attempts: 1, ErrCode: 40199, ErrMsg: "waybill not found", Reason: "rejected",
		DeadLetterSeq: 5, At: time.Now().Add(-time.Minute)}.FromEvent(ev))
	if err := hw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev.ActionMsg = "signed"
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(ctx, "", "trace", "--nats-url", url, "SF1")
	if code != 0 {
		t.Fatalf("trace: exit %d %q", code, stderr)
	}
	for _, want := range []string{"dead_lettered", "dead letter 5 (rejected)", "waiting", "138****8000", "deadletter replay --waybill SF1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("trace output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "13800138000") || strings.Contains(stdout, "token-abcd1234") {
		t.Errorf("trace output shows a phone number or a token:\n%s", stdout)
	}

	code, stdout, stderr = run(ctx, "", "trace", "--nats-url", url, "--json", "SF1")
	if code != 0 {
		t.Fatalf("trace --json: exit %d %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("trace --json: %d lines, want 2:\n%s", len(lines), stdout)
	}
	var states []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"seq", "action_type", "action_time", "state", "attempts", "errcode", "errmsg", "at"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks %q", l, k)
			}
		}
		states = append(states, m["state"].(string))
	}
	if strings.Join(states, ",") != "dead_lettered,waiting" {
		t.Fatalf("states %v, want dead_lettered then waiting", states)
	}
	if strings.Contains(stdout, "13800138000") {
		t.Errorf("trace --json shows a phone number:\n%s", stdout)
	}
	if !strings.Contains(lines[0], `"dead_letter_seq":5`) {
		t.Errorf("dead letter line lacks its sequence: %s", lines[0])
	}
}
