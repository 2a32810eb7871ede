package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestPauseFlagErrors: a wrong --until or --for is refused with exit 2,
// naming the flag, before anything connects (no server runs here).
func TestPauseFlagErrors(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--until", "2099-01-01T00:00:00Z", "--for", "1h"}, []string{"--until and --for both given"}},
		{[]string{"--until", "2001-01-01T00:00:00Z"}, []string{"--until 2001-01-01T00:00:00Z is in the past"}},
		{[]string{"--until", "tomorrow"}, []string{`--until "tomorrow"`, "RFC 3339"}},
		{[]string{"--for", "2 hours"}, []string{`--for "2 hours"`, "not a duration"}},
		{[]string{"--for", "-5m"}, []string{"--for -5m", "positive"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"pause", "--nats-url", "nats://127.0.0.1:1"}, tt.args...)
			code, stdout, stderr := run(ctx, "", args...)
			if code != 2 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing done", code, stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}

// TestPauseResumeCommands pauses and resumes through the command line
// against a real JetStream server, and reads the pause back with status.
func TestPauseResumeCommands(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	url := s.ClientURL()

	code, stdout, stderr := run(ctx, "", "resume", "--nats-url", url)
	if code != 0 || stdout != "delivery was not paused: nothing to resume\n" {
		t.Fatalf("resume before any pause: exit %d %q %q", code, stdout, stderr)
	}

	before := time.Now()
	code, stdout, stderr = run(ctx, "", "pause", "--nats-url", url, "--for", "2h")
	if code != 0 {
		t.Fatalf("pause --for 2h: exit %d %q", code, stderr)
	}
	end, err := time.Parse(time.RFC3339, strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(stdout, "\n", 2)[0],
		"paused delivery on 8 partitions and the unpartitioned consumer until "), "; lift it with `pathupdate resume`"))
	if err != nil {
		t.Fatalf("pause --for 2h said %q: %v", stdout, err)
	}
	if d := end.Sub(before); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Minute {
		t.Fatalf("paused until %s, %s from now; want 2h", end, d)
	}
	if !strings.Contains(stdout, "9 of the consumers do not exist yet: a worker creates them paused") {
		t.Errorf("pause output does not say the consumers are missing:\n%s", stdout)
	}

	code, stdout, stderr = run(ctx, "", "pause", "--nats-url", url)
	if code != 0 || !strings.HasPrefix(stdout, "paused delivery on 8 partitions and the unpartitioned consumer until resumed; lift it with `pathupdate resume`\n") {
		t.Fatalf("pause: exit %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(ctx, "", "status", "--nats-url", url)
	if code != 0 || !strings.HasPrefix(stdout, "Delivery paused until resumed (by an operator since ") {
		t.Fatalf("status during the pause: exit %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(ctx, "", "status", "--nats-url", url, "--json")
	if code != 0 || !strings.Contains(stdout, `"until_resumed": true`) {
		t.Fatalf("status --json during the pause: exit %d %q %q", code, stdout, stderr)
	}

	code, stdout, stderr = run(ctx, "", "resume", "--nats-url", url)
	if code != 0 || stdout != "resumed delivery on 8 partitions and the unpartitioned consumer: the events that waited are delivered now, in order\n" {
		t.Fatalf("resume: exit %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = run(ctx, "", "status", "--nats-url", url)
	if code != 0 || strings.Contains(stdout, "paused") {
		t.Fatalf("status after resume: exit %d\n%s", code, stdout)
	}
}

// httpGet returns the status and body of url, or 0 when it does not answer.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWorkerCommandShowsPause runs `pathupdate worker` and pauses it with
// `pathupdate pause` from another command: its /readyz stays 200 and
// says the pause, its /metrics says pathupdate_paused 1, and both follow
// `pathupdate resume`.
func TestWorkerCommandShowsPause(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	url := s.ClientURL()
	base := fmt.Sprintf("http://127.0.0.1:%d", natstest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var stderr string
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, _, stderr = run(ctx, "", "worker", "--nats-url", url, "--sandbox", "--log-level", "error", "--http-addr", strings.TrimPrefix(base, "http://"))
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)

	// eventually polls url until match holds on its answer.
	eventually := func(what, url string, match func(int, string) bool) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, body := httpGet(t, url)
			if match(st, body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s; last answer %d %q", what, st, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("worker ready", base+"/readyz", func(st int, _ string) bool { return st == 200 })

	if c, out, errs := run(context.Background(), "", "pause", "--nats-url", url); c != 0 {
		t.Fatalf("pause: exit %d %q %q", c, out, errs)
	}
	eventually("pathupdate_paused 1", base+"/metrics", func(_ int, b string) bool { return strings.Contains(b, "\npathupdate_paused 1\n") })
	body := eventually("/readyz notes the pause", base+"/readyz", func(st int, b string) bool {
		return strings.Contains(b, `"name":"paused"`) && strings.Contains(b, "note")
	})
	if st, b := httpGet(t, base+"/readyz"); st != 200 || !strings.Contains(body, "delivery paused until resumed by an operator") {
		t.Fatalf("/readyz during a pause: %d %s", st, b)
	}

	if c, out, errs := run(context.Background(), "", "resume", "--nats-url", url); c != 0 {
		t.Fatalf("resume: exit %d %q %q", c, out, errs)
	}
	eventually("pathupdate_paused 0", base+"/metrics", func(_ int, b string) bool { return strings.Contains(b, "\npathupdate_paused 0\n") })
	if _, b := httpGet(t, base+"/readyz"); strings.Contains(b, "note") {
		t.Fatalf("/readyz still notes a pause after resume: %s", b)
	}
	stop()
	if code != 0 {
		t.Fatalf("worker exit %d: %s", code, stderr)
	}
}
