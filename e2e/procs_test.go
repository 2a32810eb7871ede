package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// workerProc is one `pathupdate worker` process.
type workerProc struct {
	cmd  *exec.Cmd
	out  *natstest.SyncBuffer
	done chan struct{}
	err  error
}

// startWorker starts a worker process delivering to sb, with short
// timings so takeovers happen in seconds.
func startWorker(t *testing.T, natsURL string, sb *sandbox.Server, extra ...string) *workerProc {
	t.Helper()
	args := append([]string{"worker", "--nats-url", natsURL, "--api-base", sb.URL,
		"--appid", sandbox.DefaultAppID, "--appsecret", sandbox.DefaultAppSecret,
		"--log-format", "json", "--log-level", "info",
		"--retry-initial", "10ms", "--retry-max", "200ms", "--retry-attempts", "100",
		"--ack-wait", "3s", "--pinned-ttl", "2s", "--member-ttl", "2s", "--shutdown-timeout", "5s",
		"--http-addr", "127.0.0.1:0"}, extra...)
	p := &workerProc{cmd: exec.Command(binary, args...), out: &natstest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if dir := os.Getenv("PATHUPDATE_E2E_LOGS"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("worker-%d.log", p.cmd.Process.Pid)), []byte(p.out.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("worker pid %d log (tail):\n%s", p.cmd.Process.Pid, tail(p.out.String(), 10))
		}
	})
	return p
}

// kill9 kills the process the way a crash does.
func (p *workerProc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// term stops the process gracefully and returns its exit code.
func (p *workerProc) term(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("worker pid %d did not stop within 30s of SIGTERM", p.cmd.Process.Pid)
	}
	return p.cmd.ProcessState.ExitCode()
}

// agentPID maps a sandbox call's User-Agent (pathupdate-worker/host-PID-x)
// to the worker's process id.
func agentPID(ua string) int {
	parts := strings.Split(ua, "-")
	var pid int
	for i := len(parts) - 2; i >= 0; i-- {
		if _, err := fmt.Sscanf(parts[i], "%d", &pid); err == nil && fmt.Sprint(pid) == parts[i] {
			return pid
		}
	}
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// trace is the events of one waybill in publish order.
type trace []pathupdate.Event

func makeTraces(prefix string, waybills, perWaybill int) []trace {
	out := make([]trace, waybills)
	for i := range out {
		for j := range perWaybill {
			out[i] = append(out[i], pathupdate.Event{
				Token:      "tok-" + prefix,
				WaybillID:  fmt.Sprintf("%s%05d", prefix, i),
				ActionTime: 1_767_225_600 + int64(j),
				ActionType: pathupdate.ActionInTransit,
				ActionMsg:  fmt.Sprintf("step %d", j),
			})
		}
	}
	return out
}

// publishAll publishes step j of every waybill before step j+1 of any.
func publishAll(ctx context.Context, t *testing.T, js jetstream.JetStream, trs []trace) {
	t.Helper()
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Error(err)
		return
	}
	var lines bytes.Buffer
	for j := 0; ; j++ {
		any := false
		for _, tr := range trs {
			if j < len(tr) {
				any = true
				lines.Write(tr[j].Encode())
				lines.WriteByte('\n')
			}
		}
		if !any {
			break
		}
	}
	sum, err := pub.PublishLines(ctx, &lines, nil)
	if err != nil || sum.Failed > 0 || sum.Invalid > 0 {
		t.Errorf("publish: %+v %v", sum, err)
	}
}

// checkOrder asserts every event of trs reached the sandbox in order per
// waybill and returns the number of repeated deliveries. At least once
// allows the event just delivered to come again (a crash between its
// delivery and its ack); it never allows an older event after a newer.
func checkOrder(t *testing.T, sb *sandbox.Server, trs []trace) (dups int) {
	t.Helper()
	for _, tr := range trs {
		next := 0
		for _, c := range sb.Delivered(tr[0].WaybillID) {
			switch {
			case next < len(tr) && c.ActionMsg == tr[next].ActionMsg:
				next++
			case next > 0 && c.ActionMsg == tr[next-1].ActionMsg:
				dups++
			default:
				t.Fatalf("waybill %s: %q delivered out of order (next expected %d of %d)", tr[0].WaybillID, c.ActionMsg, next, len(tr))
			}
		}
		if next != len(tr) {
			t.Fatalf("waybill %s: %d of %d events delivered", tr[0].WaybillID, next, len(tr))
		}
	}
	return dups
}

// streamEmpty reports whether the trace stream holds nothing: with
// work-queue retention every event was acked.
func streamEmpty(ctx context.Context, js jetstream.JetStream) bool {
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		return false
	}
	info, err := st.Info(ctx)
	return err == nil && info.State.Msgs == 0
}
