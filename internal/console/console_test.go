package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

func TestConfigValidate(t *testing.T) {
	long := pathupdate.Secret("0123456789abcdef")
	tests := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"loopback without token", Config{Addr: "127.0.0.1:0"}, ""},
		{"localhost without token", Config{Addr: "localhost:8090"}, ""},
		{"ipv6 loopback without token", Config{Addr: "[::1]:8090"}, ""},
		{"every interface without token", Config{Addr: ":8090"}, "Token"},
		{"public address without token", Config{Addr: "10.1.2.3:8090"}, "Token"},
		{"every interface with token", Config{Addr: "0.0.0.0:8090", Token: long}, ""},
		{"short token", Config{Addr: "127.0.0.1:0", Token: "short"}, "Token"},
		{"not host:port", Config{Addr: "8090"}, "Addr"},
		{"refresh too short", Config{Refresh: 1}, "Refresh"},
		{"page too big", Config{PageSize: 5000}, "PageSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			fes := pathupdate.FieldErrorsOf(err)
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (len(fes) != 1 || fes[0].Field != tc.field):
				t.Fatalf("error %v, want one about %s", err, tc.field)
			}
			if err != nil && strings.Contains(err.Error(), long.Reveal()) {
				t.Fatalf("the error holds the token: %v", err)
			}
		})
	}
}

const testToken = "console-token-0123456789"

// TestLogin: with a token every page asks for a login; a wrong token is
// refused; the session cookie is HttpOnly and SameSite=Strict; no page
// and no log line holds the token.
func TestLogin(t *testing.T) {
	e := newEnv(t, envOptions{noWorker: true, cfg: Config{Token: testToken}})
	b := e.browser(t)
	// Redirected to the login page, which remembers where to go.
	status, body := b.get("/deadletters?errcode=40199")
	if status != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("without a session: %d, want the login page:\n%s", status, excerpt(body))
	}
	mustContain(t, "login page", body, `name="next" value="/deadletters?errcode=40199"`)

	status, body = b.postRaw("/login", url.Values{"token": {"wrong-token-000000000"}, "next": {"/"}}, nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", status)
	}
	mustContain(t, "refused login", body, "not this console's")

	// A POST to an action without a session is refused.
	if status, _ := b.post("/pause", url.Values{"csrf": {"x"}}); status != http.StatusForbidden {
		t.Fatalf("action without a session: %d, want 403", status)
	}

	status, body = b.postRaw("/login", url.Values{"token": {testToken}, "next": {"/deadletters"}}, nil)
	if status != http.StatusOK || !strings.Contains(body, "<h1>Dead letters</h1>") {
		t.Fatalf("after login: %d, want the page asked for:\n%s", status, excerpt(body))
	}
	u, _ := url.Parse(e.srv.URL)
	cookies := b.hc.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != sessionCookie {
		t.Fatalf("cookies %v, want the session", cookies)
	}
	// The jar hides the attributes: ask for a fresh one and read them.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(e.srv.URL+"/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Fatalf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, testToken) || strings.Contains(body, testToken) || strings.Contains(e.log.String(), testToken) {
		t.Fatal("the console token is in a cookie, a page or the log")
	}
	// An open redirect is not possible through next.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		if got := safeNext(next); got != "/" {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
	}
}

// TestActionsRefused: a state-changing POST is refused without the
// session's CSRF token, from another origin, and on a read-only console,
// whose pages offer no action.
func TestActionsRefused(t *testing.T) {
	e := newEnv(t, envOptions{noWorker: true})
	b := e.browser(t)
	if status, _ := b.get("/"); status != http.StatusOK {
		t.Fatalf("overview: %d", status)
	}
	if b.csrf == "" {
		t.Fatal("the overview carries no CSRF token")
	}
	purge := url.Values{"scope": {"filter"}}
	tests := []struct {
		name   string
		vals   url.Values
		header http.Header
		want   string
	}{
		{"no csrf token", purge, nil, "CSRF token is missing"},
		{"another session's token", with(purge, "csrf", "AAAA"), nil, "CSRF token is missing"},
		{"cross-site", with(purge, "csrf", b.csrf), http.Header{"Sec-Fetch-Site": {"cross-site"}}, "cross-origin"},
		{"other origin", with(purge, "csrf", b.csrf), http.Header{"Origin": {"http://evil.example"}}, "cross-origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.postRaw("/deadletters/purge", tc.vals, tc.header)
			if status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", status)
			}
			mustContain(t, "refusal", body, tc.want)
		})
	}
	// The same request with the token passes (a purge preview).
	if status, body := b.post("/deadletters/purge", with(purge, "csrf", b.csrf)); status != http.StatusOK {
		t.Fatalf("with the token: %d\n%s", status, excerpt(body))
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{ReadOnly: true}})
	e.publish(t, event("RO1", "tok-ro1-000", 0, "call 13800138000"))
	e.settled.waitSettled(t, 0, 1)
	e.refresh(t)
	b := e.browser(t)
	for _, path := range []string{"/", "/deadletters", "/deadletters/1", "/waybill?id=RO1"} {
		status, body := b.get(path)
		if status != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, status, excerpt(body))
		}
		mustContain(t, path, body, `id="read-only"`)
		for _, action := range []string{`action="/deadletters/replay"`, `action="/deadletters/purge"`, `action="/pause"`, `/reveal"`, `name="seq"`} {
			mustNotContain(t, path, body, action)
		}
		mustNotContain(t, path, body, "13800138000", "tok-ro1-000")
	}
	for _, path := range []string{"/deadletters/replay", "/deadletters/purge", "/pause", "/resume", "/deadletters/1/reveal"} {
		status, body := b.post(path, url.Values{"scope": {"one"}, "seq": {"1"}, "confirm": {"1"}})
		if status != http.StatusForbidden {
			t.Fatalf("POST %s on a read-only console: %d", path, status)
		}
		mustContain(t, path, body, "read-only")
	}
	n, err := e.console.store.Count(t.Context(), deadletter.Filter{})
	if err != nil || n != 1 {
		t.Fatalf("dead letters after refused actions: %d, %v; want 1", n, err)
	}
}

// TestDeadLetterPages: a rejection is listed, counted, filtered and shown
// in full with its phone number masked and its token hidden until
// revealed; bad filter values are explained.
func TestDeadLetterPages(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sb.AddOrder("OK1", "tok-ok1-0000")
	e.publish(t,
		event("OK1", "tok-ok1-0000", 0, "picked up"),
		event("NF1", "tok-nf1-secret", 0, "派件员 13800138000 正在派送"), // no order: 40199
		event("OK1", "wrong-token-00", 1, "in transit"),           // 9300507
	)
	e.settled.waitSettled(t, 1, 2)
	e.refresh(t)
	b := e.browser(t)

	_, body := b.get("/deadletters")
	mustContain(t, "list", body, "<strong>2</strong> dead letters of <strong>2</strong> waybills", "40199 (waybill not found)", "9300507 (incorrect token)")
	_, body = b.get("/deadletters?errcode=40199")
	mustContain(t, "filtered list", body, "<strong>1</strong> dead letters", `href="/waybill?id=NF1"`)
	mustNotContain(t, "filtered list", body, `href="/waybill?id=OK1"`)

	status, body := b.get("/deadletters?errcode=abc&since=yesterday")
	if status != http.StatusBadRequest {
		t.Fatalf("bad filter: %d", status)
	}
	mustContain(t, "bad filter", body, `errcode &#34;abc&#34;: give a whole number`, `since &#34;yesterday&#34;`)

	seq := firstSeq(t, e, deadletter.Filter{Waybill: "NF1"})
	_, body = b.get("/deadletters/" + seq)
	mustContain(t, "detail", body, "138****8000", "hidden (14 characters, ending …cret)", `&#34;token&#34;:&#34;(hidden)&#34;`)
	mustNotContain(t, "detail", body, "13800138000", "tok-nf1-secret")
	status, body = b.post("/deadletters/"+seq+"/reveal", nil)
	if status != http.StatusOK {
		t.Fatalf("reveal: %d", status)
	}
	mustContain(t, "revealed", body, "tok-nf1-secret")
	mustNotContain(t, "log", e.log.String(), "tok-nf1-secret", "13800138000")

	if status, _ := b.get("/deadletters/999999"); status != http.StatusNotFound {
		t.Fatalf("missing dead letter: %d, want 404", status)
	}
}

// TestReplayFromTheConsole: an operator finds a 40199, the order is
// registered, the preview names the waybill, the replay delivers it, and
// the waybill's timeline shows it delivered; a 9300507 is fixed with a
// new token; a purge states its count.
func TestReplayFromTheConsole(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sb.AddOrder("TK1", "tok-tk1-right")
	e.publish(t,
		event("NF2", "tok-nf2-0000", 0, "picked up"),
		event("NF2", "tok-nf2-0000", 1, "in transit"),
		event("TK1", "tok-tk1-wrong", 0, "picked up"),
		event("GONE", "tok-gone-000", 0, "picked up"),
	)
	e.settled.waitSettled(t, 0, 4)
	e.refresh(t)
	b := e.browser(t)
	b.get("/deadletters")

	// Replay NF2's two by filter: a preview first, nothing changed.
	status, body := b.post("/deadletters/replay", url.Values{"scope": {"filter"}, "waybill": {"NF2"}})
	if status != http.StatusOK {
		t.Fatalf("preview: %d\n%s", status, excerpt(body))
	}
	mustContain(t, "preview", body, "would republish <strong>2</strong> dead letters of <strong>1</strong> waybills", "NF2", "Nothing has changed yet")
	e.sb.AddOrder("NF2", "tok-nf2-0000")
	status, body = b.post("/deadletters/replay", url.Values{"scope": {"filter"}, "waybill": {"NF2"}, "confirm": {"1"}})
	if status != http.StatusOK {
		t.Fatalf("replay: %d\n%s", status, excerpt(body))
	}
	mustContain(t, "result", body, "Replayed 2 of the dead letters where waybill=NF2 (1 waybill)")
	e.settled.waitSettled(t, 2, 4)
	if got := len(e.sb.Delivered("NF2")); got != 2 {
		t.Fatalf("NF2 delivered %d times, want 2", got)
	}
	_, body = b.get("/waybill?id=NF2")
	mustContain(t, "timeline", body, "replayed", "delivered")

	// TK1: a new token for its waybill.
	seq := firstSeq(t, e, deadletter.Filter{Waybill: "TK1"})
	_, body = b.get("/deadletters/" + seq)
	mustContain(t, "detail", body, `id="set-token-form"`)
	status, body = b.post("/deadletters/replay", url.Values{"scope": {"waybill"}, "waybill": {"TK1"}, "set_token": {"tok-tk1-right"}})
	if status != http.StatusOK {
		t.Fatalf("set token: %d\n%s", status, excerpt(body))
	}
	mustContain(t, "result", body, "Replayed 1 of the dead letters of waybill TK1 with the new token")
	e.settled.waitSettled(t, 3, 4)
	if got := e.sb.Delivered("TK1"); len(got) != 1 {
		t.Fatalf("TK1 delivered %d times, want 1", len(got))
	}

	// GONE: purge, with the count stated before and after.
	status, body = b.post("/deadletters/purge", url.Values{"scope": {"filter"}, "waybill": {"GONE"}})
	if status != http.StatusOK {
		t.Fatalf("purge preview: %d", status)
	}
	mustContain(t, "purge preview", body, "removes <strong>1</strong> dead letters for good", "Purge 1 dead letters")
	status, body = b.post("/deadletters/purge", url.Values{"scope": {"filter"}, "waybill": {"GONE"}, "confirm": {"1"}, "expect": {"1"}})
	if status != http.StatusOK {
		t.Fatalf("purge: %d", status)
	}
	mustContain(t, "purge result", body, "Purged 1 of the dead letters where waybill=GONE")
	if n, err := e.console.store.Count(t.Context(), deadletter.Filter{}); err != nil || n != 0 {
		t.Fatalf("dead letters left: %d, %v", n, err)
	}
	_, body = b.get("/waybill?id=GONE")
	mustContain(t, "timeline", body, "purged")

	// A selection with nothing ticked is explained, not an error page.
	status, body = b.post("/deadletters/replay", url.Values{"scope": {"selection"}})
	if status != http.StatusBadRequest {
		t.Fatalf("empty selection: %d", status)
	}
	mustContain(t, "empty selection", body, "no dead letter selected")
}

func firstSeq(t *testing.T, e *env, f deadletter.Filter) string {
	t.Helper()
	p := e.console.index.Page(f, 1)
	if len(p.Records) == 0 {
		t.Fatalf("no dead letter for %s", f)
	}
	return itoa(int(p.Records[0].Seq))
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = append([]string(nil), vals...)
	}
	out.Set(k, val)
	return out
}

var _ = errors.New

// TestOverviewShowsQuota: the quota a worker read from WeChat (the
// sandbox's getApiQuota) is on the overview.
func TestOverviewShowsQuota(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	// The worker creates the quota bucket and publishes its first reading
	// at start; watch for it (the watch also yields a reading made before).
	var kv jetstream.KeyValue
	var err error
	for kv == nil {
		if kv, err = e.js.KeyValue(ctx, worker.QuotaBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Fatal(err)
		}
		if kv == nil {
			select {
			case <-ctx.Done():
				t.Fatal("no quota bucket")
			case <-time.After(20 * time.Millisecond): // pacing a lookup, not a wait for a result
			}
		}
	}
	w, err := kv.Watch(ctx, worker.QuotaKey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deadline := time.After(30 * time.Second)
	for got := false; !got; {
		select {
		case u := <-w.Updates():
			got = u != nil
		case <-deadline:
			t.Fatal("no quota reading within 30 s")
		}
	}
	_, body := e.browser(t).get("/")
	mustContain(t, "overview", body, `id="quota"`, "calls left today")
}

// TestPauseFromTheConsole: bad pause input is explained; a pause for a
// duration shows on every page with its end and in the deployment's
// record; resume lifts it.
func TestPauseFromTheConsole(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser(t)
	b.get("/")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	bad := []struct {
		name string
		vals url.Values
		want string
	}{
		{"both", url.Values{"for": {"1h"}, "until": {future}}, `give &#34;for&#34; or &#34;until&#34;, not both`},
		{"not a duration", url.Values{"for": {"soon"}}, `for &#34;soon&#34;: give a positive duration`},
		{"negative", url.Values{"for": {"-5m"}}, "give a positive duration"},
		{"not a time", url.Values{"until": {"tomorrow"}}, "give an RFC 3339 time"},
		{"past", url.Values{"until": {"2020-01-01T00:00:00Z"}}, "is not in the future"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.post("/pause", tc.vals)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
			mustContain(t, "refusal", body, tc.want)
		})
	}
	if st := e.console.readPause(t.Context()); st.Paused {
		t.Fatal("paused by refused input")
	}

	status, body := b.post("/pause", url.Values{"for": {"1h"}})
	if status != http.StatusOK {
		t.Fatalf("pause: %d\n%s", status, excerpt(body))
	}
	mustContain(t, "after pause", body, "Paused delivery of 8 partitions", "<strong>Delivery is paused</strong> until", `id="resume"`)
	for _, path := range []string{"/deadletters", "/waybill"} {
		_, body := b.get(path)
		mustContain(t, path, body, "<strong>Delivery is paused</strong> until")
	}
	st := e.console.readPause(t.Context())
	if !st.Paused || st.UntilResumed || st.Until.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("recorded pause %+v, want one for an hour", st)
	}
	status, body = b.post("/resume", nil)
	if status != http.StatusOK {
		t.Fatalf("resume: %d", status)
	}
	mustContain(t, "after resume", body, "Resumed delivery of 8 partitions", "Delivery is running.")
	if st := e.console.readPause(t.Context()); st.Paused {
		t.Fatal("still paused after resume")
	}
}
