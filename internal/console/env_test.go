package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/internal/wechattest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// env is a deployment for the console's tests: a real JetStream server,
// the sandbox over HTTP, a worker with the delivery history on, and the
// console served by httptest.
type env struct {
	js      jetstream.JetStream
	sb      *sandbox.Server
	pub     *pathupdate.Publisher
	worker  *worker.Worker
	console *Console
	srv     *httptest.Server
	settled *settlements
	log     *natstest.SyncBuffer // the console's log
}

// settlements counts what the worker settled and signals each one.
type settlements struct {
	worker.NopObserver
	mu        sync.Mutex
	delivered int
	dead      int
	changed   chan struct{}
}

func (s *settlements) Settled(st worker.Settlement) {
	s.mu.Lock()
	if st.Delivered {
		s.delivered++
	} else {
		s.dead++
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// waitSettled waits until the worker has delivered and dead-lettered at
// least that many.
func (s *settlements) waitSettled(t *testing.T, delivered, dead int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		d, x := s.delivered, s.dead
		s.mu.Unlock()
		if d >= delivered && x >= dead {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("settled %d delivered and %d dead letters; want %d and %d", d, x, delivered, dead)
		}
	}
}

type envOptions struct {
	cfg      Config
	noWorker bool
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	ctx := context.Background()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := history.EnsureStream(ctx, js, history.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{Seed: 1})
	t.Cleanup(sb.Close)
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, sb: sb, pub: pub, settled: &settlements{changed: make(chan struct{}, 1)}, log: &natstest.SyncBuffer{}}
	if !opts.noWorker {
		hw, err := history.NewWriter(js, history.WriterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hw.Close(context.Background()) })
		api := wechattest.Client(t, sb, pathupdate.ClientConfig{Timeout: 5 * time.Second})
		w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{
			Retry:    retry.Policy{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 50},
			History:  hw,
			Observer: e.settled,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		e.worker = w
	}
	cfg := opts.cfg
	cfg.Logger = zerolog.New(e.log)
	if cfg.Refresh == 0 {
		cfg.Refresh = 100 * time.Millisecond
	}
	c, err := New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.console = c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log:\n%s", e.log.String())
		}
	})
	e.srv = httptest.NewServer(c.Handler())
	t.Cleanup(e.srv.Close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return e
}

// newEnvConsole serves a second console with cfg on e's deployment.
func newEnvConsole(t *testing.T, e *env, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Refresh == 0 {
		cfg.Refresh = 100 * time.Millisecond
	}
	c, err := New(e.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// event is step i of a waybill.
func event(waybill, token string, i int, msg string) pathupdate.Event {
	return pathupdate.Event{Token: token, WaybillID: waybill, ActionTime: 1_767_225_600 + int64(i), ActionType: pathupdate.ActionInTransit, ActionMsg: msg}
}

func (e *env) publish(t *testing.T, evs ...pathupdate.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := e.pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// browser is an HTTP client with a cookie jar: an operator's browser
// without the rendering.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string // from the last page read
}

func (e *env) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: e.srv.URL, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a page and remembers its CSRF token.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(resp)
}

func (b *browser) read(resp *http.Response) (int, string) {
	b.t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfInput.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

// post submits a form with the current CSRF token unless vals sets one.
func (b *browser) post(path string, vals url.Values) (int, string) {
	b.t.Helper()
	if vals == nil {
		vals = url.Values{}
	}
	if _, ok := vals["csrf"]; !ok {
		vals.Set("csrf", b.csrf)
	}
	return b.postRaw(path, vals, nil)
}

func (b *browser) postRaw(path string, vals url.Values, header http.Header) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(resp)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, excerpt(body))
		}
	}
}

func mustNotContain(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Fatalf("%s contains %q:\n%s", what, w, excerpt(body))
		}
	}
}

// excerpt is a page's main part, for failure messages.
func excerpt(body string) string {
	if i := strings.Index(body, `<main id="main">`); i >= 0 {
		body = body[i:]
	}
	if len(body) > 4000 {
		body = body[:4000] + "…"
	}
	return body
}

// refresh brings the console's index up to date (the worker settles an
// event only after its dead letter is stored, so after waitSettled one
// refresh sees it).
func (e *env) refresh(t *testing.T) {
	t.Helper()
	if err := e.console.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until cond holds, checking it every 10 ms for at most a
// minute: for state that changes without an event to wait on (what a
// worker learnt from a KV watch).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
