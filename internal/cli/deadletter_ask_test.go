//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestDeadletterPurgeAsksOnATerminal: on a terminal every purge asks,
// whatever the count (it used to remove up to 100 without asking, while a
// script without --yes is refused); only "y" purges, and --yes does not
// ask.
func TestDeadletterPurgeAsksOnATerminal(t *testing.T) {
	url, js := deadLetters(t)
	purge := func(answer string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		term, typed := openTerminal(t)
		if answer != "" {
			typed(answer)
		}
		var out, errb bytes.Buffer
		code = cli.Run(context.Background(), append([]string{"pathupdate", "deadletter", "purge", "--nats-url", url}, args...), term, &out, &errb)
		return code, out.String(), errb.String()
	}

	code, stdout, stderr := purge("n\n")
	if code != 1 || !strings.Contains(stderr, "Remove 3 dead letters (all dead letters) for good? [y/N]") || !strings.Contains(stderr, "nothing purged") {
		t.Fatalf("purge of 3 answered n: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := streamMsgs(t, js, pathupdate.DeadLetterStream); n != 3 {
		t.Fatalf("%d dead letters after a purge answered n, want 3", n)
	}
	code, stdout, stderr = purge("y\n", "--errcode", "9300507")
	if code != 0 || !strings.Contains(stderr, "Remove 1 dead letters (errcode=9300507) for good? [y/N]") || !strings.Contains(stdout, "purged 1 ") {
		t.Fatalf("purge of 1 answered y: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = purge("", "--yes")
	if code != 0 || strings.Contains(stderr, "[y/N]") || !strings.Contains(stdout, "purged 2 ") {
		t.Fatalf("purge --yes on a terminal: exit %d\n%s%s", code, stdout, stderr)
	}
}
