package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// run runs the command line in-process and returns its exit code and output.
func run(ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Run(ctx, append([]string{"pathupdate"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// clearEnv makes the test independent of the caller's environment.
// clearEnv makes the test independent of the caller's environment: every
// variable a pathupdate setting reads (NATS_*, WECHAT_*, PATHUPDATE_*) is
// unset for the test and restored after it.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "NATS_") || strings.HasPrefix(k, "WECHAT_") || strings.HasPrefix(k, "PATHUPDATE_") {
			t.Setenv(k, "") // restores the old value when the test ends
			os.Unsetenv(k)
		}
	}
}

// wantRefusal asserts a command refused to start and said what to set.
func wantRefusal(t *testing.T, what string, code int, stderr string, settings ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("%s started", what)
	}
	for _, want := range settings {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refusal does not say what to set (%s): %q", want, stderr)
		}
	}
}

func line(waybill, token string, step int) string {
	return fmt.Sprintf(`{"token":%q,"waybill_id":%q,"action_time":%d,"action_type":200001,"action_msg":"step %d"}`,
		token, waybill, 1_767_225_600+step, step)
}

func TestWorkerRefusesToStartWithoutCredentials(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	code, _, stderr := run(context.Background(), "", "worker", "--nats-url", s.ClientURL(), "--log-level", "error")
	wantRefusal(t, "the worker without WeChat credentials", code, stderr, "WECHAT_APPID", "WECHAT_APPSECRET", "--sandbox")
}

func TestPublishReportsCountsAndExitCode(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	input := strings.Join([]string{
		line("W1", "t1", 1),
		line("W1", "t1", 2),
		line("W1", "t1", 1), // duplicate of the first line: same content id
		"",
		`{"waybill_id":"W2"}`, // invalid
		"not json",            // invalid
		line("W2", "t2", 1),
	}, "\n")
	code, stdout, stderr := run(context.Background(), input, "publish", "--nats-url", s.ClientURL())
	if code != 2 {
		t.Fatalf("exit %d, want 2 (invalid lines); stderr %q", code, stderr)
	}
	if want := "accepted 3, duplicate 1, invalid 2, not acknowledged 0"; !strings.Contains(stdout, want) {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "line 5") || !strings.Contains(stderr, "line 6") {
		t.Fatalf("stderr does not name the invalid lines: %q", stderr)
	}
	st, err := js.Stream(context.Background(), pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want 3", info.State.Msgs)
	}
}

func TestPublishOneFromFlags(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"publish", "--nats-url", s.ClientURL(), "--waybill", "SF1", "--waybill-token", "tk",
		"--action-type", "100001", "--action-msg", "揽件", "--action-time", "1767225600"}
	code, stdout, stderr := run(context.Background(), "", args...)
	if code != 0 || !strings.Contains(stdout, "accepted as stream sequence 1") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = run(context.Background(), "", args...)
	if code != 0 || !strings.Contains(stdout, "duplicate of stream sequence 1") {
		t.Fatalf("second publish: exit %d, stdout %q", code, stdout)
	}
	code, _, stderr = run(context.Background(), "", "publish", "--nats-url", s.ClientURL(), "--waybill", "SF1",
		"--waybill-token", "tk", "--action-type", "300001", "--action-msg", "x")
	if code != 2 || !strings.Contains(stderr, "--action-type 300001 is not one of 100001,") {
		t.Fatalf("invalid action type: exit %d, stderr %q", code, stderr)
	}
}

func TestPublishWithoutStreamFails(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	code, stdout, stderr := run(context.Background(), line("W1", "t", 1)+"\n", "publish", "--nats-url", s.ClientURL())
	if code != 1 {
		t.Fatalf("exit %d, want 1 (not acknowledged); stdout %q stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "not acknowledged 1") {
		t.Fatalf("stdout %q", stdout)
	}
}

// TestEmbeddedWorkerKeepsBacklogAndStopsCleanly runs the worker on its
// embedded default: events published while WeChat is down survive a worker
// restart and are delivered by the next one; a stop (SIGTERM's context
// cancel) exits 0.
func TestEmbeddedWorkerKeepsBacklogAndStopsCleanly(t *testing.T) {
	clearEnv(t)
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true, Seed: 1})
	t.Cleanup(sb.Close)
	sb.SetFaults(sandbox.Faults{OutageUntil: time.Now().Add(time.Hour)})
	port := natstest.FreePort(t)
	dir := t.TempDir()
	workerArgs := []string{"worker", "--data-dir", dir, "--embedded-port", fmt.Sprint(port), "--api-base", sb.URL,
		"--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret, "--log-level", "error",
		"--retry-initial", "10ms", "--retry-max", "100ms", "--http-addr", "127.0.0.1:0"}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	startWorker := func() (stop func() (int, string)) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var code int
		var stderr string
		wg.Add(1)
		go func() { defer wg.Done(); code, _, stderr = run(ctx, "", workerArgs...) }()
		// Ready once the embedded server takes publishes.
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, _, _ := run(context.Background(), "", "publish", "--nats-url", url, "--waybill", "PING", "--waybill-token", "t",
				"--action-type", "100001", "--action-msg", "ping", "--action-time", "1767225600")
			if c == 0 {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				wg.Wait()
				t.Fatalf("worker's embedded server never took a publish: %s", stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return func() (int, string) { cancel(); wg.Wait(); return code, stderr }
	}

	stop := startWorker()
	var in []string
	for i := range 5 {
		in = append(in, line("BACKLOG", "t", i))
	}
	if code, out, errs := run(context.Background(), strings.Join(in, "\n"), "publish", "--nats-url", url); code != 0 {
		t.Fatalf("publish: %d %s %s", code, out, errs)
	}
	if code, stderr := stop(); code != 0 {
		t.Fatalf("worker exit %d after stop, want 0: %s", code, stderr)
	}
	if n := len(sb.Delivered("BACKLOG")); n != 0 {
		t.Fatalf("%d delivered during the outage", n)
	}

	sb.SetFaults(sandbox.Faults{})
	stop = startWorker()
	deadline := time.Now().Add(30 * time.Second)
	for len(sb.Delivered("BACKLOG")) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if code, stderr := stop(); code != 0 {
		t.Fatalf("worker exit %d after stop, want 0: %s", code, stderr)
	}
	got := sb.Delivered("BACKLOG")
	if len(got) != 5 {
		t.Fatalf("%d of 5 backlog events delivered after the restart", len(got))
	}
	for i, c := range got {
		if c.ActionMsg != fmt.Sprintf("step %d", i) {
			t.Fatalf("delivery %d is %q: out of order", i, c.ActionMsg)
		}
	}
}
