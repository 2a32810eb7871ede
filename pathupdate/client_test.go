package pathupdate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// clock is a settable clock shared by a sandbox and the sources under test,
// so token lives and minute quotas move only when a test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// logSink collects zerolog output from concurrent writers.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

// tokenSpy is an http.RoundTripper that notes every access_token the token
// endpoints hand out, so a test can look for them where they must not be.
type tokenSpy struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (s *tokenSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "token") {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var a struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &a) == nil && a.AccessToken != "" {
		s.add(a.AccessToken)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (s *tokenSpy) add(tok string) { s.mu.Lock(); defer s.mu.Unlock(); s.seen = append(s.seen, tok) }

func (s *tokenSpy) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// env is one sandbox with a fake clock, a log sink and a token spy. At the
// end of the test it checks that no log line and no recorded error or
// Outcome text holds the app secret or an issued access_token.
type env struct {
	t   *testing.T
	srv *sandbox.Server
	clk *clock
	log *logSink
	spy *tokenSpy
	hc  *http.Client

	mu      sync.Mutex
	texts   []string // error and Outcome strings seen by the test
	secrets []string // credentials that must appear nowhere
}

func newEnv(t *testing.T, cfg sandbox.Config) *env {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	srv := sandbox.NewServer(cfg)
	t.Cleanup(srv.Close)
	spy := &tokenSpy{base: srv.Client().Transport}
	e := &env{t: t, srv: srv, clk: clk, log: &logSink{}, spy: spy,
		hc: &http.Client{Transport: spy}, secrets: []string{sandbox.DefaultAppSecret}}
	if cfg.AppSecret != "" {
		e.secrets = append(e.secrets, cfg.AppSecret)
	}
	t.Cleanup(e.checkNoSecrets)
	return e
}

func (e *env) logger() zerolog.Logger { return zerolog.New(e.log).Level(zerolog.TraceLevel) }

func (e *env) tokenConfig() pathupdate.TokenConfig {
	return pathupdate.TokenConfig{
		APIBase:    e.srv.URL,
		AppID:      sandbox.DefaultAppID,
		AppSecret:  sandbox.DefaultAppSecret,
		HTTPClient: e.hc,
		Now:        e.clk.Now,
		Logger:     e.logger(),
	}
}

func (e *env) stable() pathupdate.TokenSource {
	e.t.Helper()
	ts, err := pathupdate.NewStableTokenSource(e.tokenConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

func (e *env) client(ts pathupdate.TokenSource, timeout time.Duration) *pathupdate.Client {
	e.t.Helper()
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: e.srv.URL, Tokens: ts,
		HTTPClient: e.hc, Timeout: timeout, Logger: e.logger(), Now: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// note records what a caller could log: the Outcome in every verb.
func (e *env) note(o pathupdate.Outcome) pathupdate.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.texts = append(e.texts, o.String(), fmt.Sprintf("%v|%+v|%#v", o, o, o))
	if o.Err != nil {
		e.texts = append(e.texts, o.Err.Error(), fmt.Sprintf("%+v|%#v", o.Err, o.Err))
	}
	return o
}

func (e *env) noteErr(err error) error {
	if err != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.texts = append(e.texts, err.Error(), fmt.Sprintf("%+v|%#v", err, err))
	}
	return err
}

func (e *env) noteText(s string) { e.mu.Lock(); defer e.mu.Unlock(); e.texts = append(e.texts, s) }

func (e *env) addSecret(s string) { e.mu.Lock(); defer e.mu.Unlock(); e.secrets = append(e.secrets, s) }

func (e *env) checkNoSecrets() {
	e.mu.Lock()
	texts := append([]string{e.log.String()}, e.texts...)
	secrets := append(append([]string(nil), e.secrets...), e.spy.tokens()...)
	e.mu.Unlock()
	for _, l := range leaks(texts, secrets) {
		e.t.Errorf("credential leaked: %s", l)
	}
}

// leaks returns every text that contains one of secrets.
func leaks(texts, secrets []string) []string {
	var out []string
	for _, txt := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(txt, s) {
				out = append(out, fmt.Sprintf("%q in %q", s, txt))
			}
		}
	}
	return out
}

var evCounter atomic.Int64

func event(waybill, token string) pathupdate.Event {
	return pathupdate.Event{Token: token, WaybillID: waybill, ActionTime: 1_700_000_000 + evCounter.Add(1),
		ActionType: pathupdate.ActionInTransit, ActionMsg: "到达 <深圳> 转运中心 & more"}
}

func TestUpdatePathOutcomes(t *testing.T) {
	t.Parallel()
	const evTok = "order-token-1"
	orders := map[string]string{"W1": evTok}
	tests := []struct {
		name     string
		cfg      sandbox.Config
		ev       pathupdate.Event
		timeout  time.Duration
		before   int // delivered calls made first
		kind     pathupdate.Kind
		errcode  int
		status   func(int) bool
		errIs    error
		wantCall bool // the sandbox recorded the call with the event's fields
	}{
		{name: "delivered", cfg: sandbox.Config{Orders: orders}, ev: event("W1", evTok),
			kind: pathupdate.Delivered, status: is(200), wantCall: true},
		{name: "40199 waybill not found", cfg: sandbox.Config{Orders: orders}, ev: event("W404", evTok),
			kind: pathupdate.Rejected, errcode: 40199, status: is(200), wantCall: true},
		{name: "9300507 incorrect token", cfg: sandbox.Config{Orders: orders}, ev: event("W1", "not-the-token"),
			kind: pathupdate.Rejected, errcode: 9300507, status: is(200), wantCall: true},
		{name: "-1 system error", cfg: sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{SystemErrorRate: 1}},
			ev: event("W2", evTok), kind: pathupdate.Transient, errcode: -1, status: is(200)},
		{name: "HTTP 5xx", cfg: sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{HTTP5xxRate: 1}},
			ev: event("W3", evTok), kind: pathupdate.Transient, status: func(s int) bool { return s >= 500 && s <= 504 }},
		{name: "outage 503", cfg: sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{OutageUntil: newClock().Now().Add(time.Hour)}},
			ev: event("W4", evTok), kind: pathupdate.Transient, status: is(503)},
		{name: "45011 minute quota", cfg: sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{MinuteQuota: 2}},
			ev: event("W5", evTok), before: 2, kind: pathupdate.Throttled, errcode: 45011, status: is(200)},
		{name: "timeout", cfg: sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{Latency: sandbox.Duration(5 * time.Second)}},
			ev: event("W6", evTok), timeout: 50 * time.Millisecond, kind: pathupdate.Transient, status: is(0), errIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.cfg)
			c := e.client(e.stable(), tt.timeout)
			ctx := context.Background()
			for i := range tt.before {
				if o := e.note(c.UpdatePath(ctx, event(tt.ev.WaybillID, tt.ev.Token))); o.Kind != pathupdate.Delivered {
					t.Fatalf("call %d before: %v", i, o)
				}
			}
			start := time.Now()
			o := e.note(c.UpdatePath(ctx, tt.ev))
			if o.Kind != tt.kind || o.ErrCode != tt.errcode || !tt.status(o.HTTPStatus) {
				t.Fatalf("got %+v, want kind %v errcode %d", o, tt.kind, tt.errcode)
			}
			if tt.errIs != nil && !errors.Is(o.Err, tt.errIs) {
				t.Fatalf("Err %v does not match %v", o.Err, tt.errIs)
			}
			if tt.errIs == nil && o.Err != nil {
				t.Fatalf("unexpected Err %v", o.Err)
			}
			if tt.timeout > 0 && time.Since(start) > 3*time.Second {
				t.Fatalf("a %v timeout took %v", tt.timeout, time.Since(start))
			}
			calls := e.srv.Calls(tt.ev.WaybillID)
			if len(calls) != tt.before+1 {
				t.Fatalf("sandbox saw %d calls, want %d: one attempt, no retry of its own", len(calls), tt.before+1)
			}
			if tt.wantCall {
				got := calls[len(calls)-1]
				if got.Token != tt.ev.Token || got.ActionTime != tt.ev.ActionTime || got.ActionType != int(tt.ev.ActionType) || got.ActionMsg != tt.ev.ActionMsg {
					t.Fatalf("sandbox received %+v for %+v", got, tt.ev)
				}
			}
		})
	}
}

func is(want int) func(int) bool { return func(got int) bool { return got == want } }

func TestUpdatePathConnectionRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: deadURL, Tokens: e.stable(),
		HTTPClient: pathupdate.NewHTTPClient(5 * time.Second), Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	o := e.note(c.UpdatePath(context.Background(), event("W1", "t")))
	if o.Kind != pathupdate.Transient || o.HTTPStatus != 0 || !errors.Is(o.Err, syscall.ECONNREFUSED) {
		t.Fatalf("got %+v, want Transient wrapping ECONNREFUSED", o)
	}
	var ue *url.Error
	if !errors.As(o.Err, &ue) || !strings.Contains(ue.URL, "access_token=REDACTED") {
		t.Fatalf("transport error not scrubbed: %v", o.Err)
	}

	// The token endpoint unreachable: a TokenError of Kind Transient.
	ts, err := pathupdate.NewClassicTokenSource(pathupdate.TokenConfig{APIBase: deadURL, AppID: "wx", AppSecret: "classic-secret-xyz", Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.addSecret("classic-secret-xyz")
	c2, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: deadURL, Tokens: ts, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	o = e.note(c2.UpdatePath(context.Background(), event("W1", "t")))
	var te *pathupdate.TokenError
	if o.Kind != pathupdate.Transient || !errors.As(o.Err, &te) || !errors.Is(o.Err, syscall.ECONNREFUSED) || !strings.Contains(o.Err.Error(), "secret=REDACTED") {
		t.Fatalf("got %+v, want a Transient TokenError with secret=REDACTED", o)
	}
}

// ownServer answers updatePath with the given handler and checks every
// request is what WeChat expects.
func ownServer(t *testing.T, tok string, answer http.HandlerFunc) (*httptest.Server, chan []byte) {
	t.Helper()
	return ownServerConns(t, tok, answer, nil)
}

func ownServerConns(t *testing.T, tok string, answer http.HandlerFunc, newConns *atomic.Int32) (*httptest.Server, chan []byte) {
	t.Helper()
	bodies := make(chan []byte, 100)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/express/delivery/path/update" ||
			r.URL.Query().Get("access_token") != tok || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unexpected request %s %s (Content-Type %q)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		answer(w, r)
	}))
	if newConns != nil {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, bodies
}

func TestUpdatePathOwnServerAnswers(t *testing.T) {
	t.Parallel()
	var redirectHit atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirectHit.Store(true) }))
	t.Cleanup(target.Close)

	tests := []struct {
		name    string
		answer  http.HandlerFunc
		kind    pathupdate.Kind
		status  int
		errcode int
		wantErr bool
	}{
		{"non-JSON 200", text(200, "<html>Bad Gateway</html>"), pathupdate.Transient, 200, 0, true},
		{"empty 200", text(200, ""), pathupdate.Transient, 200, 0, true},
		{"over 64 KiB", text(200, `{"errcode":0,"errmsg":"`+strings.Repeat("x", 70<<10)+`"}`), pathupdate.Transient, 200, 0, true},
		{"missing errcode is 0", text(200, `{"errmsg":"ok"}`), pathupdate.Delivered, 200, 0, false},
		{"unknown errcode", text(200, `{"errcode":47001,"errmsg":"data format error"}`), pathupdate.Rejected, 200, 47001, false},
		{"4xx from a gateway", text(403, `{"errcode":0}`), pathupdate.Transient, 403, 0, false},
		{"429 from a gateway", text(429, "slow down"), pathupdate.Transient, 429, 0, false},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
		}, pathupdate.Transient, 307, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const tok = "static-access-token-abc"
			srv, bodies := ownServer(t, tok, tt.answer)
			c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL + "/", Tokens: pathupdate.NewStaticTokenSource(tok)})
			if err != nil {
				t.Fatal(err)
			}
			ev := event("W1", "t")
			o := c.UpdatePath(context.Background(), ev)
			if o.Kind != tt.kind || o.HTTPStatus != tt.status || o.ErrCode != tt.errcode || (o.Err != nil) != tt.wantErr {
				t.Fatalf("got %+v, want %v HTTP %d errcode %d err %v", o, tt.kind, tt.status, tt.errcode, tt.wantErr)
			}
			if strings.Contains(o.String(), tok) {
				t.Fatalf("token in %q", o)
			}
			if got := <-bodies; !bytes.Equal(got, ev.Encode()) {
				t.Fatalf("body %s, want %s", got, ev.Encode())
			}
		})
	}
	if redirectHit.Load() {
		t.Fatal("a redirect was followed")
	}
}

func text(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestUpdatePathReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	var n atomic.Int32
	const tok = "tok"
	srv, bodies := ownServerConns(t, tok, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 { // a gateway error with a body, then a real answer
			text(503, strings.Repeat("e", 100<<10))(w, r) // more than is read: the rest must be drained
			return
		}
		text(200, `{"errcode":0,"errmsg":"ok"}`)(w, r)
	}, &conns)
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: srv.URL, Tokens: pathupdate.NewStaticTokenSource(tok),
		HTTPClient: pathupdate.NewHTTPClient(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		o := c.UpdatePath(context.Background(), event("W1", "t"))
		<-bodies
		if o.Kind != pathupdate.Delivered && o.HTTPStatus != 503 {
			t.Fatalf("call %d: %v", i, o)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("30 sequential calls opened %d connections, want 1 (bodies drained and closed)", got)
	}
}

func TestUpdatePathCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	c := e.client(e.stable(), time.Minute)

	// Cancelled before the call, with and without a cached token.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := e.note(c.UpdatePath(ctx, event("W1", "t")))
	if o.Kind != pathupdate.Transient || !errors.Is(o.Err, context.Canceled) {
		t.Fatalf("cold cache: %+v", o)
	}
	if o := e.note(c.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
		t.Fatalf("warm-up: %v", o)
	}
	o = e.note(c.UpdatePath(ctx, event("W1", "t")))
	if o.Kind != pathupdate.Transient || !errors.Is(o.Err, context.Canceled) {
		t.Fatalf("warm cache: %+v", o)
	}

	// Cancelled while WeChat takes its time.
	e.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(time.Minute)})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan pathupdate.Outcome, 1)
	go func() { done <- c.UpdatePath(ctx, event("W2", "t")) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.srv.Calls("W2")) == 0 { // no event to wait on: poll the sandbox's record
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the sandbox")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	o = e.note(<-done)
	if o.Kind != pathupdate.Transient || !errors.Is(o.Err, context.Canceled) || o.HTTPStatus != 0 {
		t.Fatalf("mid-flight: %+v", o)
	}
}

func TestUpdatePathTokenRefusedTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	const bogus = "bogus-access-token-never-issued"
	e.addSecret(bogus)
	c := e.client(pathupdate.NewStaticTokenSource(bogus), 0)
	o := e.note(c.UpdatePath(context.Background(), event("W1", "t")))
	if o.Kind != pathupdate.TokenInvalid || o.ErrCode != 40001 {
		t.Fatalf("got %+v, want TokenInvalid 40001", o)
	}
	if got := e.srv.Stats().ByErrcode[40001]; got != 2 {
		t.Fatalf("%d calls refused, want 2: the call and exactly one retry", got)
	}
}

func TestNewClientValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  pathupdate.ClientConfig
		want string
	}{
		{"no tokens", pathupdate.ClientConfig{}, "ClientConfig.Tokens"},
		{"bad base", pathupdate.ClientConfig{APIBase: "ftp://x", Tokens: pathupdate.NewStaticTokenSource("t")}, "ClientConfig.APIBase"},
		{"query in base", pathupdate.ClientConfig{APIBase: "https://x/?a=b", Tokens: pathupdate.NewStaticTokenSource("t")}, "ClientConfig.APIBase"},
		{"negative timeout", pathupdate.ClientConfig{Timeout: -1, Tokens: pathupdate.NewStaticTokenSource("t")}, "ClientConfig.Timeout"},
	}
	for _, tt := range tests {
		if _, err := pathupdate.NewClient(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
	if _, err := pathupdate.NewClient(pathupdate.ClientConfig{Tokens: pathupdate.NewStaticTokenSource("t")}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
