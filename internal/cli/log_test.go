package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// startedWorkerLog runs a worker (embedded server, in-process sandbox)
// until its HTTP endpoints are up, stops it, and returns its log.
func startedWorkerLog(t *testing.T, format string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr natstest.SyncBuffer
	done := make(chan int, 1)
	args := []string{"pathupdate", "worker", "--sandbox", "--data-dir", t.TempDir(), "--embedded-port", fmt.Sprint(natstest.FreePort(t)),
		"--http-addr", "127.0.0.1:0", "--log-format", format}
	go func() { done <- cli.Run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(stderr.String(), "/healthz") {
		select {
		case code := <-done:
			t.Fatalf("worker exited %d before serving: %s", code, stderr.String())
		case <-deadline:
			t.Fatalf("worker never logged its HTTP endpoints: %s", stderr.String())
		case <-tick.C:
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
	return stderr.String()
}

// Logs carry milliseconds (events a few ms apart keep their order), and a
// worker's start says once where its HTTP endpoints are.
func TestWorkerLogMillisecondsAndOneHTTPLine(t *testing.T) {
	clearEnv(t)
	log := startedWorkerLog(t, "json")
	millis := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	http := 0
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		if ts, _ := rec["time"].(string); !millis.MatchString(ts) {
			t.Errorf("time %q has no milliseconds: %s", ts, l)
		}
		if strings.Contains(l, "/healthz") {
			http++
		}
	}
	if http != 1 {
		t.Errorf("%d log lines announce the HTTP endpoints, want 1:\n%s", http, log)
	}

	console := startedWorkerLog(t, "console")
	consoleTime := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `)
	for _, l := range strings.Split(strings.TrimSpace(console), "\n") {
		if !consoleTime.MatchString(l) {
			t.Errorf("console line without a millisecond time: %q", l)
		}
	}
}
