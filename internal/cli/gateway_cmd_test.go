package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

const gatewayTestToken = "cli-gateway-token-0123456789abcdef"

func TestGatewayRefusesToStartWithoutToken(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	code, _, stderr := run(context.Background(), "", "gateway", "--nats-url", s.ClientURL(), "--gateway-addr", "127.0.0.1:0")
	wantRefusal(t, "the gateway without a token", code, stderr, "PATHUPDATE_GATEWAY_TOKEN", "PATHUPDATE_GATEWAY_TOKEN_FILE", "--gateway-token")
}

// TestGatewayCommand runs `pathupdate gateway` in-process with its token in
// a file: an event posted to it lands in the stream, and cancelling the
// context (what SIGTERM does) stops it with exit status 0. No log line
// shows the token.
func TestGatewayCommand(t *testing.T) {
	clearEnv(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(gatewayTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	exit := make(chan int, 1)
	go func() {
		code := cli.Run(ctx, []string{"pathupdate", "gateway", "--nats-url", s.ClientURL(), "--gateway-addr", "127.0.0.1:0",
			"--gateway-token-file", tokenFile, "--log-level", "debug", "--log-format", "json"}, strings.NewReader(""), outW, &stderr)
		outW.Close()
		exit <- code
	}()
	br := bufio.NewReader(outR)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line on stdout (%v); stderr: %s; exit %d", err, stderr.String(), <-exit)
	}
	go io.Copy(io.Discard, br) // keeps stdout drained until the command ends
	url, ok := strings.CutPrefix(strings.TrimSpace(first), "gateway listening on ")
	if !ok || !strings.HasSuffix(url, "/v1/events") {
		t.Fatalf("stdout line %q does not say where the gateway listens", first)
	}

	post := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(line("GW1", "tk", 1)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("wrong-token-0123456789abcdef"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: answer %d, want 401", code)
	}
	if code := post(gatewayTestToken); code != http.StatusOK {
		t.Fatalf("answer %d, want 200; stderr: %s", code, stderr.String())
	}
	st, err := js.Stream(context.Background(), pathupdate.TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d events, want the one posted", info.State.Msgs)
	}

	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d after the context ended, want 0; stderr: %s", code, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"status":401`) || !strings.Contains(logs, "gateway stopped") {
		t.Errorf("the log lacks the requests or the stop:\n%s", logs)
	}
	if strings.Contains(logs, gatewayTestToken) {
		t.Errorf("the gateway token is in the log:\n%s", logs)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
