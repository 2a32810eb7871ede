package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/sandbox"
)

// tokenRecorder is a reverse proxy in front of the sandbox that keeps
// every access_token the token endpoints hand out: the worker's
// --api-base points at it, so the test knows every token the worker held.
type tokenRecorder struct {
	URL string

	mu     sync.Mutex
	tokens []string
}

func newTokenRecorder(t *testing.T, target string) *tokenRecorder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &tokenRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if p := resp.Request.URL.Path; p != "/cgi-bin/token" && p != "/cgi-bin/stable_token" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var a struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &a) == nil && a.AccessToken != "" {
			r.mu.Lock()
			if !slices.Contains(r.tokens, a.AccessToken) {
				r.tokens = append(r.tokens, a.AccessToken)
			}
			r.mu.Unlock()
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *tokenRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// leaks names the secrets whose value appears in text. The secrets of the
// test are plain letters, digits and hyphens, so JSON or URL escaping
// cannot hide one.
func leaks(text string, secrets map[string]string) []string {
	var found []string
	for name, v := range secrets {
		if v != "" && strings.Contains(text, v) {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	return found
}

// waitUntil polls cond (the sandbox's record, a command's output: no
// event to wait on) until it holds or within passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoSecretInAnyOutput runs a whole deployment in-process with every
// secret set (the app secret, a NATS password, the gateway token) and
// short-lived access tokens, drives events through it (deliveries,
// retries, rejections, invalid events, token revocations, a wrong NATS
// password, NATS going down and coming back, --print-config), captures
// every line every command writes, and asserts that no secret and no
// access token the worker was ever given appears in it. Phone numbers in
// action_msg reach WeChat as they are and the logs only masked.
func TestNoSecretInAnyOutput(t *testing.T) {
	isolateEnv(t)
	const (
		appID         = "wxsecretstest0001"
		appSecret     = "AppSecret-7f3c9e1d2b"
		natsUser      = "pathupdate"
		natsPassword  = "NatsPass-5e8a1c4d"
		wrongPassword = "WrongPass-3d1f6a"
		gatewayToken  = "GatewayToken-9b2f6e3a1c7d"
		consoleToken  = "ConsoleToken-4c8e2a6f0b13"
		phone         = "13800138000"
		maskedPhone   = "138****8000"
	)
	ctx := context.Background()
	var logs output // everything every command writes, except operators' data (below)
	var ops output  // deadletter list output and /metrics: operator data, may hold event content

	// WeChat: tokens live 2 s, many calls fail with -1 (retried: the
	// worker's budget is 20 attempts, so none runs out by chance).
	sb := sandbox.NewServer(sandbox.Config{AppID: appID, AppSecret: appSecret, TokenTTL: 2 * time.Second, Seed: 7,
		Orders: map[string]string{"SEC001": "tk-1", "SEC002": "tk-2", "SEC003": "tk-3", "SEC004": "tk-4"},
		Faults: sandbox.Faults{SystemErrorRate: 0.4}})
	t.Cleanup(sb.Close)
	rec := newTokenRecorder(t, sb.URL)

	// NATS with a password, on a port it keeps across a restart.
	storeDir := t.TempDir()
	ns := startServer(t, natsserver.RandomPort, storeDir, userPassword(natsUser, natsPassword))
	natsURL := ns.ClientURL()
	port, err := strconv.Atoi(natsURL[strings.LastIndex(natsURL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"--nats-url", natsURL, "--user", natsUser, "--password", natsPassword}
	secretURL := strings.Replace(natsURL, "nats://", "nats://"+natsUser+":"+natsPassword+"@", 1)

	// --print-config with every secret set, by flag, URL, environment and
	// config file.
	cfgFile := filepath.Join(t.TempDir(), "pathupdate.yaml")
	if err := os.WriteFile(cfgFile, []byte("appsecret: "+appSecret+"\nappid: "+appID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATHUPDATE_GATEWAY_TOKEN", gatewayToken)
	for _, args := range [][]string{
		{"worker", "--print-config", "--nats-url", secretURL, "--user", natsUser, "--password", natsPassword, "--token", natsPassword,
			"--appid", appID, "--appsecret", appSecret, "--gateway-token", gatewayToken},
		{"worker", "--print-config", "--config", cfgFile, "--nats-url", secretURL},
	} {
		code, got := runInto(ctx, &logs, "", args...)
		if code != 0 || !strings.Contains(got, "[redacted]") {
			t.Fatalf("print-config: exit %d:\n%s", code, got)
		}
	}
	os.Unsetenv("PATHUPDATE_GATEWAY_TOKEN")

	ensureStreams(t, natsURL, nats.UserInfo(natsUser, natsPassword))

	// A wrong password.
	if code, _ := runInto(ctx, &logs, line("SEC001", "tk-1", 0)+"\n", "publish", "--nats-url", natsURL, "--user", natsUser, "--password", wrongPassword); code == 0 {
		t.Fatal("publish with a wrong password succeeded")
	}

	// The worker, with the gateway inside, logging everything.
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan int, 1)
	go func() {
		code, _ := runInto(wctx, &logs, "", append([]string{"worker", "--appid", appID, "--appsecret", appSecret, "--api-base", rec.URL,
			"--gateway-addr", "127.0.0.1:0", "--gateway-token", gatewayToken, "--http-addr", "127.0.0.1:0",
			"--console-addr", "127.0.0.1:0", "--console-token", consoleToken,
			"--log-level", "trace", "--log-format", "json", "--retry-initial", "20ms", "--retry-max", "200ms", "--retry-attempts", "20"}, auth...)...)
		workerDone <- code
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopWorker()
			if code := <-workerDone; code != 0 {
				t.Errorf("worker exit %d", code)
			}
		}
	}
	t.Cleanup(stop)
	gw := "http://" + logs.waitFor(t, regexp.MustCompile(`"addr":"([^"]+)","path":"/v1/events"`), 20*time.Second) + "/v1/events"
	health := logs.waitFor(t, regexp.MustCompile(`"url":"([^"]+)","time":"[^"]*","message":"serving /metrics`), 20*time.Second)
	consoleURL := logs.waitFor(t, regexp.MustCompile(`"url":"(http://[^"]+)","read_only":false`), 20*time.Second)

	event := func(waybill, token string, step int, msg string) string {
		return fmt.Sprintf(`{"token":%q,"waybill_id":%q,"action_time":%d,"action_type":100001,"action_msg":%q}`,
			token, waybill, 1_767_225_600+step, msg)
	}
	publish := func(lines ...string) {
		t.Helper()
		runInto(ctx, &logs, strings.Join(lines, "\n")+"\n", append([]string{"publish"}, auth...)...)
	}
	post := func(token, body string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, gw, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ops.Write(b) // the answer goes to the producer, not a log: checked for secrets only
		return resp.StatusCode
	}
	delivered := func(waybill string, n int) func() bool {
		return func() bool { return len(sb.Delivered(waybill)) >= n }
	}

	// 1: deliveries with phone numbers, a wrong token (9300507), an
	// unknown waybill (40199), lines that are no valid event.
	publish(
		event("SEC001", "tk-1", 1, "派件员张三 "+phone+" 正在派送"),
		event("SEC001", "tk-1", 2, "快递员 138-0013-8000 已揽件"),
		event("SEC002", "wrong-token", 1, "x"),
		event("UNKNOWN01", "tk-x", 1, "电话 "+phone),
		event("张三"+phone, "tk-1", 3, "waybill id holding a phone"),
		`{"token":"t","waybill_id":"SEC001"`,
	)
	// An event whose body names another waybill than its subject.
	nc, err := nats.Connect(natsURL, nats.UserInfo(natsUser, natsPassword))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "logistics.trace.SEC003", []byte(event(phone, "tk-3", 1, "x"))); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitUntil(t, 30*time.Second, "SEC001's first two events delivered", delivered("SEC001", 2))
	if got := sb.Delivered("SEC001")[0].ActionMsg; !strings.Contains(got, phone) {
		t.Fatalf("WeChat got action_msg %q: the phone number must reach it unmasked", got)
	}

	// 2: tokens revoked (40001, refresh), events through the gateway, a
	// wrong bearer token, a body that is not JSON.
	sb.RevokeTokens()
	if code := post(gatewayToken, "["+event("SEC001", "tk-1", 3, "电话"+phone)+","+event("SEC004", "tk-4", 1, "x")+"]"); code != http.StatusOK {
		t.Fatalf("gateway answered %d", code)
	}
	if code := post("not-the-token-0123456789", event("SEC004", "tk-4", 2, "x")); code != http.StatusUnauthorized {
		t.Fatalf("gateway answered %d to a wrong token", code)
	}
	if code := post(gatewayToken, `{"action_msg":"`+phone+`",}`); code != http.StatusBadRequest {
		t.Fatalf("gateway answered %d to bad JSON", code)
	}
	waitUntil(t, 30*time.Second, "the gateway's events delivered", func() bool { return delivered("SEC001", 3)() && delivered("SEC004", 1)() })
	sb.RevokeTokens()
	publish(event("SEC004", "tk-4", 3, "x"))
	waitUntil(t, 30*time.Second, "SEC004's second event delivered", delivered("SEC004", 2))
	waitUntil(t, 30*time.Second, "three access tokens issued", func() bool { return len(rec.seen()) >= 3 })

	// 3: NATS goes down and comes back.
	ns.Shutdown()
	logs.waitFor(t, regexp.MustCompile(`NATS connection lost`), 20*time.Second)
	if code, _ := runInto(ctx, &logs, event("SEC004", "tk-4", 4, "x")+"\n", "publish", "--nats-url", secretURL); code == 0 {
		t.Fatal("publish succeeded with NATS down")
	}
	if code := post(gatewayToken, event("SEC004", "tk-4", 4, "x")); code != http.StatusServiceUnavailable {
		t.Fatalf("gateway answered %d with NATS down, want 503", code)
	}
	startServer(t, port, storeDir, userPassword(natsUser, natsPassword))
	logs.waitFor(t, regexp.MustCompile(`NATS connection restored`), 20*time.Second)
	publish(event("SEC004", "tk-4", 5, "after the outage "+phone))
	waitUntil(t, 60*time.Second, "an event published after the outage delivered", delivered("SEC004", 3))

	// Operators' views: dead letters and metrics.
	waitUntil(t, 30*time.Second, "three dead letters", func() bool {
		var o output
		runInto(ctx, &o, "", append([]string{"deadletter", "list", "--json"}, auth...)...)
		return strings.Count(o.String(), `"seq"`) >= 3
	})
	runInto(ctx, &ops, "", append([]string{"deadletter", "list"}, auth...)...)
	if resp, err := http.Get(health + "/metrics"); err == nil {
		io.Copy(&ops, resp.Body)
		resp.Body.Close()
	}
	// The console's pages, logged in: operator data too.
	readConsole(t, consoleURL, consoleToken, &ops, "/", "/deadletters", "/deadletters/1", "/deadletters/2", "/deadletters/3",
		"/waybill?id=SEC001", "/waybill?id=UNKNOWN01")
	stop()

	secrets := map[string]string{"app secret": appSecret, "NATS password": natsPassword, "wrong NATS password": wrongPassword,
		"gateway token": gatewayToken, "console token": consoleToken}
	tokens := rec.seen()
	for i, tok := range tokens {
		secrets[fmt.Sprintf("access_token #%d", i+1)] = tok
	}
	all := logs.String() + ops.String()
	if found := leaks(all, secrets); len(found) > 0 {
		t.Errorf("secrets in the output: %v", found)
	}
	if strings.Contains(logs.String(), phone) {
		t.Errorf("a phone number is in a log line:\n%s", grepLines(logs.String(), phone))
	}
	for _, want := range []string{maskedPhone, "dead-lettered: invalid_event", "dead-lettered: rejected", "retrying in", "[redacted]", "REDACTED@"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the run did not go where it should: no %q in the output", want)
		}
	}
	t.Logf("%d lines checked, %d access tokens, %d bytes of operator data", strings.Count(all, "\n"), len(tokens), len(ops.String()))

	// The detector works on this very capture: a secret logged on purpose
	// through the same kind of writer and logger trips it.
	t.Run("detector trips", func(t *testing.T) {
		var probe output
		log := zerolog.New(multiWriter{&probe, &output{}}).With().Timestamp().Logger()
		log.Info().Str("oops", appSecret).Str("token", tokens[len(tokens)-1]).Msg("leaked on purpose")
		found := leaks(logs.String()+probe.String(), secrets)
		if want := []string{"access_token #" + strconv.Itoa(len(tokens)), "app secret"}; !slices.Equal(found, want) {
			t.Fatalf("detector found %v, want %v", found, want)
		}
	})
}

func grepLines(text, s string) string {
	var out []string
	for l := range strings.Lines(text) {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// readConsole logs in to the console at base with token and writes the
// pages at paths to out.
func readConsole(t *testing.T, base, token string, out io.Writer, paths ...string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := hc.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, p := range paths {
		resp, err := hc.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("console %s: %d", p, resp.StatusCode)
		}
		if strings.Contains(string(body), `name="token"`) {
			t.Fatalf("console %s: the login did not hold", p)
		}
		out.Write(body)
	}
}
