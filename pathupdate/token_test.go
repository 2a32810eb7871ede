package pathupdate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

func TestStableTokenOneFetchFor100Goroutines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{})
	ts := e.stable()
	const n = 100
	start := make(chan struct{})
	toks := make(chan pathupdate.Secret, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			tok, err := ts.Token(context.Background())
			if e.noteErr(err) != nil {
				t.Error(err)
			}
			toks <- tok
		})
	}
	close(start)
	wg.Wait()
	close(toks)
	first := <-toks
	for tok := range toks {
		if tok != first {
			t.Fatal("goroutines got different tokens")
		}
	}
	if st := e.srv.Stats(); st.StableTokenCalls != 1 {
		t.Fatalf("%d stable_token calls for %d goroutines, want 1", st.StableTokenCalls, n)
	}
}

func TestStableTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	// WeChat's lifetime (7200 s) and renew window (5 min); the source's
	// default RefreshBefore (5 min).
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	c := e.client(e.stable(), 0)
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 1},
		{time.Hour, 1},                  // cached
		{54 * time.Minute, 1},           // 1h54m: still before the refresh point
		{2 * time.Minute, 2},            // 1h56m: in the last 5 min, refetched (WeChat renews)
		{5 * time.Minute, 2},            // 2h01m: the first token is dead, the new one cached
		{time.Hour + 49*time.Minute, 2}, // 3h50m: the new token (to 3h56m) still cached
		{2 * time.Minute, 3},            // 3h52m: in its last 5 min
	}
	for i, s := range steps {
		e.clk.Advance(s.advance)
		if o := e.note(c.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
			t.Fatalf("step %d: %v", i, o)
		}
		if got := e.srv.Stats().StableTokenCalls; got != s.wantCalls {
			t.Fatalf("step %d: %d stable_token calls, want %d", i, got, s.wantCalls)
		}
	}
	if st := e.srv.Stats(); st.ByErrcode[42001]+st.ByErrcode[40001] != 0 || st.StableTokensIssued != 3 {
		t.Fatalf("stats %+v: want no refused token and 3 issued", st)
	}
}

func TestStableTokenShortLifetimeAcrossExpiry(t *testing.T) {
	t.Parallel()
	// A 1-minute token: RefreshBefore (5 min default) is capped at half
	// the lifetime, so the token is still used and refreshed in time.
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true, TokenTTL: time.Minute})
	c := e.client(e.stable(), 0)
	for i := range 300 { // 5 minutes of one call a second
		if o := e.note(c.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
			t.Fatalf("call %d at +%ds: %v", i, i, o)
		}
		e.clk.Advance(time.Second)
	}
	st := e.srv.Stats()
	if st.ByErrcode[42001]+st.ByErrcode[40001] != 0 {
		t.Fatalf("an expired token was sent: %+v", st.ByErrcode)
	}
	// One token a minute; the stable endpoint hands back the same token
	// with a shrinking expires_in until it renews, and the source re-asks
	// at half of what is left: a handful of calls per token, not one per
	// UpdatePath.
	if st.StableTokensIssued < 5 || st.StableTokensIssued > 6 || st.StableTokenCalls > 8*st.StableTokensIssued {
		t.Fatalf("%d tokens issued in %d stable_token calls over 5 one-minute lifetimes", st.StableTokensIssued, st.StableTokenCalls)
	}
}

func TestRevokeTokensOneRefetchAndRetry(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 100} {
		t.Run(fmt.Sprintf("%d goroutines", n), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
			c := e.client(e.stable(), 0)
			if o := e.note(c.UpdatePath(context.Background(), event("W0", "t"))); o.Kind != pathupdate.Delivered {
				t.Fatalf("warm-up: %v", o)
			}
			e.srv.RevokeTokens()
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					if o := e.note(c.UpdatePath(context.Background(), event(fmt.Sprintf("W%d", i), "t"))); o.Kind != pathupdate.Delivered {
						t.Errorf("goroutine %d: %v", i, o)
					}
				})
			}
			close(start)
			wg.Wait()
			st := e.srv.Stats()
			if st.StableTokenCalls != 2 {
				t.Fatalf("%d stable_token calls, want 2: one refetch however many were refused", st.StableTokenCalls)
			}
			if r := st.ByErrcode[40001]; r < 1 || r > int64(n) {
				t.Fatalf("%d calls refused with 40001, want 1..%d (each at most once)", r, n)
			}
		})
	}
}

func TestClassicReplacedToken(t *testing.T) {
	t.Parallel()
	// Two processes each with a classic source: every fetch replaces the
	// token, the replaced one lives ClassicGrace (5 min) more.
	tests := []struct {
		name        string
		advance     time.Duration
		wantFetches int64 // classic token calls after A's call
		wantRefused int64
	}{
		{"within grace: A's replaced token still works", time.Minute, 2, 0},
		{"past grace: A refetches once and retries", 6 * time.Minute, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
			mk := func() *pathupdate.Client {
				ts, err := pathupdate.NewClassicTokenSource(e.tokenConfig())
				if err != nil {
					t.Fatal(err)
				}
				return e.client(ts, 0)
			}
			a, b := mk(), mk()
			for _, c := range []*pathupdate.Client{a, b} { // b's fetch replaces a's token
				if o := e.note(c.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
					t.Fatal(o)
				}
			}
			e.clk.Advance(tt.advance)
			if o := e.note(a.UpdatePath(context.Background(), event("W1", "t"))); o.Kind != pathupdate.Delivered {
				t.Fatalf("A after %v: %v", tt.advance, o)
			}
			st := e.srv.Stats()
			if st.ClassicTokenCalls != tt.wantFetches || st.ByErrcode[40001] != tt.wantRefused {
				t.Fatalf("%d classic token calls and %d refusals, want %d and %d", st.ClassicTokenCalls, st.ByErrcode[40001], tt.wantFetches, tt.wantRefused)
			}
		})
	}
}

// forceServer is a stable_token endpoint of our own: a plain call returns
// the current token, a forced one makes a new token. It lets a test make
// WeChat refuse a token the endpoint still hands out, which the sandbox
// never does.
type forceServer struct {
	mu     sync.Mutex
	cur    int
	plain  int
	forced int
}

func (f *forceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ForceRefresh bool `json:"force_refresh"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	if req.ForceRefresh {
		f.forced++
		f.cur++
	} else {
		f.plain++
	}
	tok := fmt.Sprintf("force-test-token-%d", f.cur)
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 7200})
}

func (f *forceServer) counts() (plain, forced int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plain, f.forced
}

func TestStableForceRefreshAllowance(t *testing.T) {
	t.Parallel()
	fs := &forceServer{}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	clk := newClock()
	logs := &logSink{}
	e := &env{t: t, log: logs}
	ts, err := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{APIBase: srv.URL, AppID: "wx", AppSecret: "s",
		Now: clk.Now, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cur, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// refuse invalidates the current token and asks again.
	refuse := func() (pathupdate.Secret, error) {
		ts.Invalidate(ctx, cur)
		tok, err := ts.Token(ctx)
		if err == nil {
			if tok == cur {
				t.Fatal("Token returned the refused token")
			}
			cur = tok
		}
		return tok, err
	}
	wantLimit := func(err error) {
		t.Helper()
		var te *pathupdate.TokenError
		if !errors.As(err, &te) || te.Kind() != pathupdate.TokenInvalid || !errors.Is(err, pathupdate.ErrForceRefreshLimit) {
			t.Fatalf("got %v, want a TokenInvalid TokenError wrapping ErrForceRefreshLimit", err)
		}
	}

	if _, err := refuse(); err != nil { // plain call returns it again: forced
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	_, err = refuse() // 10 s after the last force: not allowed
	wantLimit(err)
	if !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Fatal("no warning logged for the exhausted allowance")
	}
	for i := 2; i <= 20; i++ {
		clk.Advance(31 * time.Second)
		if _, err := refuse(); err != nil {
			t.Fatalf("force refresh %d: %v", i, err)
		}
	}
	clk.Advance(time.Hour)
	_, err = refuse() // the 21st within 24 h
	wantLimit(err)
	if _, forced := fs.counts(); forced != 20 {
		t.Fatalf("%d forced calls, want 20", forced)
	}
	clk.Advance(24 * time.Hour)
	if _, err := ts.Token(ctx); err != nil {
		t.Fatalf("a day later: %v", err)
	}
	// Invalidating a token that is no longer current changes nothing.
	plain, forced := fs.counts()
	ts.Invalidate(ctx, "force-test-token-1")
	if _, err := ts.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if p, f := fs.counts(); p != plain || f != forced {
		t.Fatalf("a stale Invalidate caused a fetch (%d/%d -> %d/%d)", plain, forced, p, f)
	}
}

// directToken gets a classic token from the sandbox by hand, the way a
// central token service would.
func directToken(t *testing.T, e *env) string {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DefaultAppID}, "secret": {sandbox.DefaultAppSecret}}
	resp, err := e.hc.Get(e.srv.URL + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.AccessToken == "" {
		t.Fatalf("direct token: %v", err)
	}
	return a.AccessToken
}

func TestFileTokenSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
	path := filepath.Join(t.TempDir(), "access_token")
	mtime := time.Now()
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		mtime = mtime.Add(time.Second) // a distinct mtime whatever the file system's resolution
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := pathupdate.NewFileTokenSource(path, e.tokenConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(ts, 0)
	ctx := context.Background()
	wantKind := func(step string, k pathupdate.Kind) {
		t.Helper()
		if o := e.note(c.UpdatePath(ctx, event("W1", "t"))); o.Kind != k {
			t.Fatalf("%s: %v, want %v", step, o, k)
		}
	}

	wantKind("no file yet", pathupdate.ConfigBroken)
	write("  \n")
	wantKind("empty file", pathupdate.ConfigBroken)
	t1 := directToken(t, e)
	write(" " + t1 + "\n")
	wantKind("token written", pathupdate.Delivered)
	if tok, _ := ts.Token(ctx); tok.Reveal() != t1 {
		t.Fatal("token not trimmed")
	}

	// The file changed (a new token, same size): re-read without Invalidate.
	t2 := directToken(t, e)
	write(t2)
	if tok, err := ts.Token(ctx); err != nil || tok.Reveal() != t2 {
		t.Fatalf("after the file changed: %v", err)
	}

	// WeChat refuses the token and the file still holds it: TokenInvalid,
	// no loop; once the service writes a new one, delivery resumes.
	e.srv.RevokeTokens()
	wantKind("refused, file unchanged", pathupdate.TokenInvalid)
	if _, err := ts.Token(ctx); err == nil {
		t.Fatal("the refused token was handed out again")
	}
	write(directToken(t, e))
	wantKind("new token written", pathupdate.Delivered)
	if got := e.srv.Stats().ByErrcode[40001]; got != 1 {
		t.Fatalf("%d refused calls, want 1", got)
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		classic bool
		appID   string
		secret  string
		errcode int
	}{
		{"stable, wrong secret", false, sandbox.DefaultAppID, "wrong-secret-stable-1", 40125},
		{"stable, wrong appid", false, "wxwrong", sandbox.DefaultAppSecret, 40013},
		{"classic, wrong secret", true, sandbox.DefaultAppID, "wrong-secret-classic-2", 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true})
			e.addSecret(tt.secret)
			cfg := e.tokenConfig()
			cfg.AppID, cfg.AppSecret = tt.appID, pathupdate.Secret(tt.secret)
			newSource := pathupdate.NewStableTokenSource
			if tt.classic {
				newSource = pathupdate.NewClassicTokenSource
			}
			ts, err := newSource(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token(context.Background())
			var te *pathupdate.TokenError
			if !errors.As(e.noteErr(err), &te) || te.Kind() != pathupdate.ConfigBroken || te.ErrCode != tt.errcode {
				t.Fatalf("Token: %v, want ConfigBroken errcode %d", err, tt.errcode)
			}
			o := e.note(e.client(ts, 0).UpdatePath(context.Background(), event("W1", "t")))
			if o.Kind != pathupdate.ConfigBroken || !errors.As(o.Err, &te) {
				t.Fatalf("UpdatePath: %+v, want ConfigBroken with the TokenError", o)
			}
			if e.srv.Stats().UpdateCalls != 0 {
				t.Fatal("updatePath was called without a token")
			}
		})
	}
}

func TestStaticTokenSource(t *testing.T) {
	t.Parallel()
	ts := pathupdate.NewStaticTokenSource("abc")
	ts.Invalidate(context.Background(), "abc")
	if tok, err := ts.Token(context.Background()); err != nil || tok.Reveal() != "abc" {
		t.Fatalf("got %v", err)
	}
	_, err := pathupdate.NewStaticTokenSource("").Token(context.Background())
	var te *pathupdate.TokenError
	if !errors.As(err, &te) || te.Kind() != pathupdate.ConfigBroken {
		t.Fatalf("empty static token: %v", err)
	}
}

func TestTokenErrorKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *pathupdate.TokenError
		want pathupdate.Kind
	}{
		{&pathupdate.TokenError{ErrCode: 40013}, pathupdate.ConfigBroken},
		{&pathupdate.TokenError{ErrCode: 40125}, pathupdate.ConfigBroken},
		{&pathupdate.TokenError{ErrCode: 40164}, pathupdate.ConfigBroken},
		{&pathupdate.TokenError{ErrCode: 48001}, pathupdate.ConfigBroken},
		{&pathupdate.TokenError{ErrCode: 40002}, pathupdate.ConfigBroken}, // unknown: a human looks
		{&pathupdate.TokenError{ErrCode: 45009}, pathupdate.Throttled},
		{&pathupdate.TokenError{ErrCode: 45011}, pathupdate.Throttled},
		{&pathupdate.TokenError{ErrCode: -1}, pathupdate.Transient},
		{&pathupdate.TokenError{Err: errors.New("HTTP 502")}, pathupdate.Transient},
	}
	for _, tt := range tests {
		if got := tt.err.Kind(); got != tt.want {
			t.Errorf("%v: Kind %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestTokenEndpointAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer http.HandlerFunc
		kind   pathupdate.Kind
	}{
		{"HTTP 502", text(502, "bad gateway"), pathupdate.Transient},
		{"non-JSON", text(200, "<html>"), pathupdate.Transient},
		{"-1", text(200, `{"errcode":-1,"errmsg":"system error"}`), pathupdate.Transient},
		{"45011", text(200, `{"errcode":45011,"errmsg":"minute quota"}`), pathupdate.Throttled},
		{"40164 echoing the secret", text(200, `{"errcode":40164,"errmsg":"invalid ip, secret echo-secret-9"}`), pathupdate.ConfigBroken},
		{"no token", text(200, `{"expires_in":7200}`), pathupdate.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.answer)
			t.Cleanup(srv.Close)
			for _, mk := range []func(pathupdate.TokenConfig) (pathupdate.TokenSource, error){pathupdate.NewStableTokenSource, pathupdate.NewClassicTokenSource} {
				ts, err := mk(pathupdate.TokenConfig{APIBase: srv.URL, AppID: "wx", AppSecret: "echo-secret-9"})
				if err != nil {
					t.Fatal(err)
				}
				_, err = ts.Token(context.Background())
				var te *pathupdate.TokenError
				if !errors.As(err, &te) || te.Kind() != tt.kind {
					t.Fatalf("got %v, want a TokenError of Kind %v", err, tt.kind)
				}
				if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), "echo-secret-9") {
					t.Fatalf("secret in %v", err)
				}
			}
		})
	}
}

func TestTokenConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  pathupdate.TokenConfig
		want []string
	}{
		{"empty", pathupdate.TokenConfig{}, []string{"TokenConfig.AppID", "TokenConfig.AppSecret"}},
		{"bad base", pathupdate.TokenConfig{APIBase: "api.weixin.qq.com", AppID: "a", AppSecret: "s"}, []string{"TokenConfig.APIBase"}},
		{"negative refresh", pathupdate.TokenConfig{AppID: "a", AppSecret: "s", RefreshBefore: -time.Second}, []string{"TokenConfig.RefreshBefore"}},
	}
	for _, tt := range tests {
		for _, mk := range []func(pathupdate.TokenConfig) (pathupdate.TokenSource, error){pathupdate.NewStableTokenSource, pathupdate.NewClassicTokenSource} {
			_, err := mk(tt.cfg)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %v, want an error naming %s", tt.name, err, w)
				}
			}
		}
	}
	if _, err := pathupdate.NewFileTokenSource("", pathupdate.TokenConfig{}); err == nil {
		t.Error("file source without a path")
	}
}

func TestTokenSourcesPrintNoCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{})
	path := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(path, []byte(directToken(t, e)), 0o600); err != nil {
		t.Fatal(err)
	}
	classic, err := pathupdate.NewClassicTokenSource(e.tokenConfig())
	if err != nil {
		t.Fatal(err)
	}
	file, err := pathupdate.NewFileTokenSource(path, e.tokenConfig())
	if err != nil {
		t.Fatal(err)
	}
	stableTok, err := e.stable().Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sources := []pathupdate.TokenSource{e.stable(), classic, file, pathupdate.NewStaticTokenSource(stableTok)}
	for _, ts := range sources {
		if _, err := ts.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.noteText(fmt.Sprintf("%v %+v %#v %s %d %x %q", ts, ts, ts, ts, ts, ts, ts))
		e.noteText(fmt.Sprintf("%v %+v %#v", e.tokenConfig(), e.tokenConfig(), e.tokenConfig()))
	}
	// checkNoSecrets (cleanup) fails the test on any leak.
}
