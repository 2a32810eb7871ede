package cli_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// startWithin bounds a start that must fail at once. The worker is given
// a --start-timeout far longer: had it waited, the context would end first
// and the worker would exit 0 (a signal during start-up), failing the test.
const startWithin = 45 * time.Second

// runWorkerStart runs a worker against url that must refuse to start, and
// returns its exit code and output.
func runWorkerStart(t *testing.T, url string, extra ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startWithin)
	defer cancel()
	var out output
	args := append([]string{"worker", "--nats-url", url, "--sandbox", "--http-addr", "off", "--start-timeout", "1h", "--log-format", "json"}, extra...)
	return runInto(ctx, &out, "", args...)
}

// TestWorkerPermanentStartErrorsEndTheStart: what waiting cannot clear ends
// the start with exit 1 and the fix, long before --start-timeout.
func TestWorkerPermanentStartErrorsEndTheStart(t *testing.T) {
	isolateEnv(t)
	for _, tt := range []struct {
		name  string
		opts  func(*server.Options)
		setup func(ctx context.Context, js jetstream.JetStream) error
		user  []string // connection flags of the worker
		extra []string
		says  []string
	}{
		{
			name: "a limits stream LOGISTICS_TRACE made by something else",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOGISTICS_TRACE", Subjects: []string{"logistics.trace.*"}})
				return err
			},
			says: []string{"LOGISTICS_TRACE", "move it aside", "let pathupdate create it"},
		},
		{
			name: "another stream takes the trace subjects",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ALL_LOGISTICS", Subjects: []string{"logistics.>"}})
				return err
			},
			says: []string{"ALL_LOGISTICS", "move its events", "docs/scaling.md"},
		},
		{
			name:  "a partition count other than the stream's",
			extra: []string{"--partitions", "4"},
			says:  []string{"8 partitions", "--partitions 8"},
		},
		{
			name: "JetStream refused by the server's permissions",
			opts: func(o *server.Options) {
				o.Users = []*server.User{{Username: "admin", Password: "admin-pass"}, {Username: "nojs", Password: "nojs-pass",
					Permissions: &server.Permissions{
						Publish:   &server.SubjectPermission{Allow: []string{"logistics.>"}},
						Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
					}}}
			},
			user: []string{"--user", "nojs", "--password", "nojs-pass"},
			says: []string{"refused a subject", "$JS.API.>", "Permissions Violation"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, natsserver.RandomPort, t.TempDir(), tt.opts)
			var admin []nats.Option
			if tt.opts != nil {
				admin = append(admin, nats.UserInfo("admin", "admin-pass"))
			}
			if tt.setup != nil {
				adminJS(t, s.ClientURL(), tt.setup, admin...)
			} else if tt.opts == nil {
				ensureStreams(t, s.ClientURL())
			}
			code, got := runWorkerStart(t, s.ClientURL(), append(tt.user, tt.extra...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1 at once; output:\n%s", code, got)
			}
			for _, want := range tt.says {
				if !strings.Contains(got, want) {
					t.Errorf("output does not say %q:\n%s", want, got)
				}
			}
			t.Logf("output:\n%s", got)
			if strings.Contains(got, "not ready") {
				t.Errorf("a permanent condition was retried as a passing one:\n%s", got)
			}
		})
	}
}

// adminJS runs f with a JetStream handle over a connection made with
// opts, closed after.
func adminJS(t *testing.T, url string, f func(context.Context, jetstream.JetStream) error, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx, js); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerWaitsForNATS: a server that is not there yet (connection
// refused) is waited for, and the worker starts once it is.
func TestWorkerWaitsForNATS(t *testing.T) {
	isolateEnv(t)
	port := natstest.FreePort(t) // refused from here until the server starts

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out output
	done := make(chan int, 1)
	go func() {
		code, _ := runInto(ctx, &out, "", "worker", "--nats-url", "nats://127.0.0.1:"+strconv.Itoa(port), "--sandbox",
			"--http-addr", "off", "--start-timeout", "1h", "--log-format", "json")
		done <- code
	}()
	out.waitFor(t, regexp.MustCompile(`NATS not reachable; waiting`), 30*time.Second)
	startServer(t, port, t.TempDir(), nil)
	out.waitFor(t, regexp.MustCompile(`worker started`), 60*time.Second)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after a clean stop:\n%s", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker did not stop:\n%s", out.String())
	}
}

// TestCommandsRefuseAnOldServer: every command that connects refuses a
// server older than 2.11.0 at once, naming both versions and why. The
// server is real; a proxy in front of it rewrites the version it announces.
func TestCommandsRefuseAnOldServer(t *testing.T) {
	isolateEnv(t)
	s := startServer(t, natsserver.RandomPort, t.TempDir(), nil)
	ensureStreams(t, s.ClientURL())
	url := versionProxy(t, s.ClientURL(), "2.10.29")

	for _, args := range [][]string{
		{"worker", "--sandbox", "--http-addr", "off", "--start-timeout", "1h"},
		{"gateway", "--gateway-token", gatewayTestToken, "--gateway-addr", "127.0.0.1:0"},
		{"status"},
		{"deadletter", "list"},
		{"publish"},
	} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), startWithin)
			defer cancel()
			var out output
			code, got := runInto(ctx, &out, line("OLDSERVER", "t", 1)+"\n", append(args, "--nats-url", url)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; output:\n%s", code, got)
			}
			t.Logf("output:\n%s", got)
			for _, want := range []string{"2.10.29", "2.11.0", "pinned consumers"} {
				if !strings.Contains(got, want) {
					t.Errorf("output does not say %q:\n%s", want, got)
				}
			}
		})
	}
}

// versionProxy forwards TCP connections to the NATS server at target,
// rewriting the version in the server's INFO lines. Everything else
// passes untouched. It stops when the test ends.
func versionProxy(t *testing.T, target, version string) string {
	t.Helper()
	addr := strings.TrimPrefix(target, "nats://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	versionRe := regexp.MustCompile(`"version":"[^"]*"`)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(srv)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer client.Close()
				// Line by line: the server sends INFO again after the
				// connect, and nats.go takes the version from the latest.
				r := bufio.NewReader(srv)
				for {
					l, err := r.ReadString('\n')
					if strings.HasPrefix(l, "INFO ") {
						l = versionRe.ReplaceAllString(l, `"version":"`+version+`"`)
					}
					if _, werr := io.WriteString(client, l); werr != nil || err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer srv.Close()
				_, _ = io.Copy(srv, client)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "nats://" + l.Addr().String()
}

// TestWorkerDataDirInUse: a second worker on the data directory of a
// running one (another embedded port) refuses to start, naming the
// directory and the process holding it.
func TestWorkerDataDirInUse(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first output
	done := make(chan int, 1)
	go func() {
		code, _ := runInto(ctx, &first, "", "worker", "--data-dir", dir, "--embedded-port", strconv.Itoa(natstest.FreePort(t)), "--sandbox",
			"--http-addr", "off", "--log-format", "json")
		done <- code
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("first worker exit %d:\n%s", code, first.String())
		}
	}()
	first.waitFor(t, regexp.MustCompile(`worker started`), 60*time.Second)

	sctx, scancel := context.WithTimeout(context.Background(), startWithin)
	defer scancel()
	var second output
	code, got := runInto(sctx, &second, "", "worker", "--data-dir", dir, "--embedded-port", strconv.Itoa(natstest.FreePort(t)), "--sandbox",
		"--http-addr", "off", "--log-format", "json")
	if code != 1 {
		t.Fatalf("second worker on the same --data-dir: exit %d, want 1:\n%s", code, got)
	}
	for _, want := range []string{dir, "in use by this process (" + strconv.Itoa(os.Getpid()) + ")", "--data-dir"} {
		if !strings.Contains(got, want) {
			t.Errorf("output does not say %q:\n%s", want, got)
		}
	}
}
