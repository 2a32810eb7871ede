package cli_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// TestSandboxCommand: `pathupdate sandbox` serves until it is stopped,
// then exits 0; a taken address is refused naming --addr.
func TestSandboxCommand(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb natstest.SyncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Run(ctx, []string{"pathupdate", "sandbox", "--addr", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb)
	}()
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	for deadline := time.Now().Add(15 * time.Second); url == ""; {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the sandbox never said where it listens: %q %q", out.String(), errb.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	res, err := http.Get(url + "/sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/sandbox/stats: %d", res.StatusCode)
	}

	code, _, stderr := run(context.Background(), "", "sandbox", "--addr", strings.TrimPrefix(url, "http://"))
	if code != 1 || !strings.Contains(stderr, "--addr") {
		t.Errorf("sandbox on a taken address: exit %d, %q", code, stderr)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d after stop: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the sandbox did not stop")
	}
	if _, err := http.Get(url + "/sandbox/stats"); err == nil {
		t.Fatal("still serving after the command returned")
	}
}
