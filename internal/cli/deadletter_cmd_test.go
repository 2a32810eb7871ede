package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// deadLetters starts a server with the streams and three dead letters:
// seq 1 W1 40199, seq 2 an invalid event without a waybill, seq 3 W2
// 9300507. No worker runs, so what a replay publishes stays in the trace
// stream to be looked at.
func deadLetters(t *testing.T) (url string, js jetstream.JetStream) {
	t.Helper()
	clearEnv(t)
	s := natstest.Start(t)
	_, js = natstest.Connect(t, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	w := deadletter.NewWriter(js, deadletter.WriterConfig{})
	at := time.Now().Add(-time.Minute)
	for i, r := range []deadletter.Record{
		{Event: []byte(line("W1", "tok-1", 1)), WaybillID: "W1", Reason: deadletter.ReasonRejected, ErrCode: 40199, ErrMsg: "waybill not exist", Attempts: 1},
		{Event: []byte("not json\xff"), Reason: deadletter.ReasonInvalidEvent, ErrMsg: "invalid event: not valid UTF-8"},
		{Event: []byte(line("W2", "wrong", 1)), WaybillID: "W2", Reason: deadletter.ReasonRejected, ErrCode: 9300507, ErrMsg: "incorrect token", Attempts: 1},
	} {
		r.OriginalSubject, r.OriginalSeq, r.FailedAt = "0.logistics.trace."+r.WaybillID, uint64(100+i), at
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return s.ClientURL(), js
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

func TestDeadletterListJSONAndFilters(t *testing.T) {
	url, _ := deadLetters(t)
	code, stdout, stderr := run(context.Background(), "", "deadletter", "list", "--json", "--nats-url", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), stdout)
	}
	var objs []map[string]any
	for _, l := range lines {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"seq", "waybill_id", "reason", "errcode", "errmsg", "attempts", "original_seq", "failed_at", "event", "replays"} {
			if _, ok := o[k]; !ok {
				t.Errorf("line %q has no %q", l, k)
			}
		}
		objs = append(objs, o)
	}
	if ev, ok := objs[0]["event"].(map[string]any); !ok || ev["waybill_id"] != "W1" || objs[0]["errcode"] != 40199.0 || objs[0]["seq"] != 1.0 {
		t.Errorf("first record: %v", objs[0])
	}
	if ev, ok := objs[1]["event"].(string); !ok || ev != "not json\uFFFD" || objs[1]["event_error"] == nil || objs[1]["waybill_id"] != "" {
		t.Errorf("invalid event record: %v", objs[1])
	}

	for _, tt := range []struct {
		args []string
		seqs string
	}{
		{[]string{"--waybill", "W2"}, "3"},
		{[]string{"--errcode", "40199"}, "1"},
		{[]string{"--reason", "invalid_event"}, "2"},
		{[]string{"--waybill", "~invalid"}, "2"},
		{[]string{"--waybill", "_invalid"}, ""}, // a valid waybill id, with no dead letters
		{[]string{"--since", "1h", "--reason", "rejected"}, "1,3"},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, ""},
		{[]string{"--from-seq", "2", "--limit", "1"}, "2"},
	} {
		code, stdout, stderr := run(context.Background(), "", append([]string{"deadletter", "list", "--json", "--nats-url", url}, tt.args...)...)
		var seqs []string
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var o struct{ Seq json.Number }
			if l != "" && json.Unmarshal([]byte(l), &o) == nil {
				seqs = append(seqs, o.Seq.String())
			}
		}
		if code != 0 || strings.Join(seqs, ",") != tt.seqs {
			t.Errorf("list %v: exit %d, seqs %v, want %s; stderr %q", tt.args, code, seqs, tt.seqs, stderr)
		}
	}

	code, stdout, _ = run(context.Background(), "", "deadletter", "list", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "SEQ") || !strings.Contains(stdout, "waybill not exist") || !strings.Contains(stdout, "3 dead letters") {
		t.Errorf("table: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"deadletter", "list", "--stats"}, {"deadletter", "stats"}} {
		code, stdout, _ = run(context.Background(), "", append(args, "--nats-url", url)...)
		if code != 0 || !strings.Contains(stdout, "3 dead letters") || !strings.Contains(stdout, "40199 (waybill not found)") ||
			!strings.Contains(stdout, "invalid_event") {
			t.Errorf("%v: exit %d\n%s", args, code, stdout)
		}
	}
}

func TestDeadletterShow(t *testing.T) {
	url, _ := deadLetters(t)
	code, stdout, stderr := run(context.Background(), "", "deadletter", "show", "1", "--nats-url", url)
	for _, want := range []string{"seq               1", "errcode           40199 (waybill not found)", "original seq      100",
		"action_type   200001 (in_transit)", "token         tok-1", `"waybill_id":"W1"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show 1 lacks %q: exit %d\n%s%s", want, code, stdout, stderr)
		}
	}
	code, stdout, _ = run(context.Background(), "", "deadletter", "show", "2", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "NOT A VALID EVENT") || !strings.Contains(stdout, `"not json\xff"`) {
		t.Errorf("show 2: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(context.Background(), "", "deadletter", "show", "--json", "3", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, `"errcode":9300507`) {
		t.Errorf("show --json 3: exit %d\n%s", code, stdout)
	}
	code, _, stderr = run(context.Background(), "", "deadletter", "show", "99", "--nats-url", url)
	if code != 1 || !strings.Contains(stderr, "no such dead letter") || !strings.Contains(stderr, "99") {
		t.Errorf("show 99: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(context.Background(), "", "deadletter", "show", "abc", "--nats-url", url)
	if code != 1 || !strings.Contains(stderr, "SEQ") {
		t.Errorf("show abc: exit %d, %q", code, stderr)
	}
}

func TestDeadletterReplay(t *testing.T) {
	url, js := deadLetters(t)
	code, stdout, stderr := run(context.Background(), "", "deadletter", "replay", "--dry-run", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "seq 1        -> logistics.trace.W1  msg id replay-1-100") ||
		!strings.Contains(stdout, "seq 2        would be skipped") || !strings.Contains(stdout, "2 would be replayed, 1 skipped") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if dl, tr := streamMsgs(t, js, pathupdate.DeadLetterStream), streamMsgs(t, js, pathupdate.TraceStream); dl != 3 || tr != 0 {
		t.Fatalf("dry run changed the streams: %d dead letters, %d trace events", dl, tr)
	}

	code, _, stderr = run(context.Background(), "", "deadletter", "replay", "--set-token", "t", "--nats-url", url)
	if code != 1 || !strings.Contains(stderr, "--waybill") || !strings.Contains(stderr, "--all-waybills") {
		t.Fatalf("set-token without waybill: exit %d, %q", code, stderr)
	}

	// stdin is not a terminal: replay proceeds without asking.
	code, stdout, stderr = run(context.Background(), "", "deadletter", "replay", "--waybill", "W2", "--set-token", "right", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "replayed 1 ") {
		t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
	}
	if dl, tr := streamMsgs(t, js, pathupdate.DeadLetterStream), streamMsgs(t, js, pathupdate.TraceStream); dl != 2 || tr != 1 {
		t.Fatalf("after replay: %d dead letters, %d trace events; want 2 and 1", dl, tr)
	}
	st, err := js.Stream(context.Background(), pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), "*.logistics.trace.W2")
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(deadletter.ReplaysHeader) != "1" || m.Header.Get(jetstream.MsgIDHeader) != "replay-3-102" || !strings.Contains(string(m.Data), `"token":"right"`) {
		t.Fatalf("replayed message: headers %v, data %s", m.Header, m.Data)
	}
}

func TestDeadletterPurgeNeedsYesWithoutTerminal(t *testing.T) {
	url, js := deadLetters(t)
	code, _, stderr := run(context.Background(), "y\n", "deadletter", "purge", "--errcode", "9300507", "--nats-url", url)
	if code != 2 || !strings.Contains(stderr, "--yes") {
		t.Fatalf("purge without --yes: exit %d, %q", code, stderr)
	}
	if n := streamMsgs(t, js, pathupdate.DeadLetterStream); n != 3 {
		t.Fatalf("%d dead letters after a refused purge", n)
	}
	code, stdout, stderr := run(context.Background(), "", "deadletter", "purge", "--yes", "--errcode", "9300507", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "purged 1 dead letter (") {
		t.Fatalf("purge --yes: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(context.Background(), "", "deadletter", "purge", "--waybill", "NONE", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "nothing to purge") {
		t.Fatalf("purge of nothing: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(context.Background(), "", "deadletter", "purge", "-y", "--nats-url", url)
	if code != 0 || !strings.Contains(stdout, "purged 2 dead letters (all dead letters)") || streamMsgs(t, js, pathupdate.DeadLetterStream) != 0 {
		t.Fatalf("purge all: exit %d\n%s", code, stdout)
	}
}

func TestDeadletterClearErrors(t *testing.T) {
	url, _ := deadLetters(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--since", "yesterday"}, "--since"},
		{[]string{"list", "--errcode", "forty"}, "--errcode"},
		{[]string{"list", "--reason", "rejceted"}, "retries_exhausted"},
		{[]string{"stats", "--waybill", "a.b"}, "--waybill"},
		{[]string{"show"}, "SEQ"},
	} {
		code, _, stderr := run(context.Background(), "", append(append([]string{"deadletter"}, tt.args...), "--nats-url", url)...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want it to name %s", tt.args, code, stderr, tt.want)
		}
	}
	bare := natstest.Start(t)
	for _, cmd := range []string{"list", "stats", "replay", "purge"} {
		code, _, stderr := run(context.Background(), "", "deadletter", cmd, "--nats-url", bare.ClientURL())
		if code != 1 || !strings.Contains(stderr, pathupdate.DeadLetterStream) || !strings.Contains(stderr, "start a worker first") {
			t.Errorf("%s without streams: exit %d, %q", cmd, code, stderr)
		}
	}
}
