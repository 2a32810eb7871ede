package cli_test

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// On a terminal the demo shows its progress on one line rewritten in
// place; elsewhere (a pipe, a CI log) as plain lines; either way it starts
// with its seed.
func TestDemoProgressOnATerminalAndOff(t *testing.T) {
	clearEnv(t)
	args := []string{"demo", "--waybills", "30", "--events-per-waybill", "4", "--seed", "9"}

	code, stdout, stderr := run(context.Background(), "", args...)
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "pathupdate demo: seed 9 ") || strings.Contains(stdout, "\r") ||
		!regexp.MustCompile(`(?m)^published (\d+)/(\d+), delivered \d+, dead-lettered \d+, in flight 0$`).MatchString(stdout) {
		t.Errorf("not on a terminal: want the seed, then plain report lines:\n%q", stdout)
	}

	term, tty := openPTY(t)
	var screen natstest.SyncBuffer
	read := make(chan struct{})
	go func() { defer close(read); io.Copy(&screen, term) }() // drained, or the demo blocks on a full terminal
	var errb natstest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(context.Background(), append([]string{"pathupdate"}, args...), strings.NewReader(""), tty, &errb)
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo on a terminal: exit %d: %s", code, errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("demo on a terminal did not end")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.String(), "took") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the terminal hands over what the demo wrote
	}
	if !regexp.MustCompile(`\rpublished \d+/\d+, delivered \d+, dead-lettered \d+, in flight 0 *\r?\n`).MatchString(screen.String()) {
		t.Errorf("on a terminal: want the report rewritten in place with \\r, ended by a newline:\n%q", screen.String())
	}
}
