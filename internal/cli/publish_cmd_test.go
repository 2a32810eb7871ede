package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// streamWithNoEvents starts a server with the streams and returns it; the
// test checks the trace stream is still empty at its end.
func streamWithNoEvents(t *testing.T) *natsserver.Server {
	t.Helper()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st, err := js.Stream(context.Background(), pathupdate.TraceStream)
		if err != nil {
			t.Error(err)
			return
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		if info.State.Msgs != 0 {
			t.Errorf("the trace stream holds %d events: a refused publish published", info.State.Msgs)
		}
	})
	return s
}

// The one-event flags and JSON lines (--file or stdin) are two forms of
// publish; mixing them would silently drop one, so it is refused with exit
// 2, nothing published, and a message saying which form to use.
func TestPublishRefusesMixedForms(t *testing.T) {
	clearEnv(t)
	s := streamWithNoEvents(t)
	file := filepath.Join(t.TempDir(), "one.jsonl")
	if err := os.WriteFile(file, []byte(line("FILE1", "t", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"flags and --file", []string{"--waybill", "W1", "--waybill-token", "t", "--action-type", "100001", "--action-msg", "m", "--file", file},
			"", []string{"--file and --waybill-token, --waybill, --action-type, --action-msg do not go together", "JSON lines with --file"}},
		{"--file and a token", []string{"--file", file, "--waybill-token", "t"},
			"", []string{"--file and --waybill-token do not go together"}},
		{"-f and a message id", []string{"-f", file, "--msg-id", "x"},
			"", []string{"--file and --msg-id do not go together"}},
		{"a token without --waybill, lines on stdin", []string{"--waybill-token", "t"},
			line("STDIN1", "t", 1), []string{"--waybill-token without --waybill", "one event needs --waybill"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(context.Background(), tt.stdin, append([]string{"publish", "--nats-url", s.ClientURL()}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stdout %q stderr %q", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
}

// An event from flags that breaks rules is refused with every problem at
// once, each naming its flag, never the JSON field.
func TestPublishFlagErrorsNameTheFlags(t *testing.T) {
	clearEnv(t)
	s := streamWithNoEvents(t)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"no token, unknown type", []string{"--waybill", "W1", "--action-type", "999", "--action-msg", "m"},
			[]string{"invalid event: --waybill-token is empty; --action-type 999 is not one of 100001, 100002"}},
		{"bad waybill, no type, no message", []string{"--waybill", "a.b", "--waybill-token", "t"},
			[]string{`--waybill "a.b" has a character outside`, "--action-msg is empty", "--action-type is missing: give one of 100001"}},
		{"type not a number, time zero", []string{"--waybill", "W1", "--waybill-token", "t", "--action-type", "picked_up", "--action-msg", "m", "--action-time", "0"},
			[]string{"--action-time 0 is not positive", `--action-type "picked_up" is not a number`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(context.Background(), "", append([]string{"publish", "--nats-url", s.ClientURL()}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2: %q", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
			for _, field := range []string{"waybill_id", "action_type", "action_msg", "action_time", " token "} {
				if strings.Contains(stderr, field) {
					t.Errorf("stderr %q names the JSON field %q instead of its flag", stderr, field)
				}
			}
		})
	}
}

// A line with several problems shows them all; an input with no events
// says there was nothing to publish.
func TestPublishLinesReportEveryProblemAndEmptyInput(t *testing.T) {
	clearEnv(t)
	s := streamWithNoEvents(t)
	code, _, stderr := run(context.Background(), `{"waybill_id":"W1","action_time":1,"action_type":999,"action_msg":"m"}`+"\n", "publish", "--nats-url", s.ClientURL())
	if code != 2 || !strings.Contains(stderr, "line 1: invalid event: token is missing; action_type 999 is not one of 100001") {
		t.Errorf("exit %d, stderr %q: want every problem of line 1", code, stderr)
	}
	if !strings.Contains(stderr, "1 line was an invalid event and not published") {
		t.Errorf("stderr %q: want a singular count", stderr)
	}
	for _, in := range []string{"", "\n\n  \n"} {
		code, stdout, stderr := run(context.Background(), in, "publish", "--nats-url", s.ClientURL())
		if code != 0 || !strings.Contains(stderr, "nothing to publish") || !strings.Contains(stdout, "accepted 0") {
			t.Errorf("input %q: exit %d, stdout %q, stderr %q: want nothing to publish", in, code, stdout, stderr)
		}
	}
}

// `pathupdate publish` typed at a terminal with nothing piped in says what
// it waits for and how to end it, instead of sitting silent.
func TestPublishOnATerminalSaysItReadsStdin(t *testing.T) {
	clearEnv(t)
	s := streamWithNoEvents(t)
	term, tty := openPTY(t)
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(context.Background(), []string{"pathupdate", "publish", "--nats-url", s.ClientURL()}, tty, &out, &errb)
	}()
	// Ctrl-D at the start of a line ends a terminal's input: the same
	// keystroke the message asks for.
	if _, err := term.Write([]byte{4}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("publish did not end on Ctrl-D")
	}
	if !strings.Contains(errb.String(), "reading events from stdin, one JSON object a line; end with Ctrl-D") {
		t.Errorf("stderr %q does not say it reads stdin and how to end", errb.String())
	}
	if !strings.Contains(errb.String(), "nothing to publish") {
		t.Errorf("stderr %q does not say there was nothing to publish", errb.String())
	}
}
