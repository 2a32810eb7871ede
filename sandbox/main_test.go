package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a Config.Now a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 1, 10, 0, 30, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start runs a sandbox server for the test and closes it at cleanup.
func start(t testing.TB, cfg sandbox.Config) *sandbox.Server {
	t.Helper()
	srv := sandbox.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// answer is any JSON answer of the WeChat endpoints, with its HTTP status.
type answer struct {
	Status      int    `json:"-"`
	Body        string `json:"-"`
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// do makes one request and reads the answer; safe from any goroutine.
func do(ctx context.Context, c *http.Client, method, u, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return answer{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, Body: string(b)}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a); err != nil {
			return a, fmt.Errorf("answer %q: %w", b, err)
		}
	}
	return a, nil
}

func mustDo(t testing.TB, srv *sandbox.Server, method, path, body string) answer {
	t.Helper()
	a, err := do(t.Context(), srv.Client(), method, srv.URL+path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func classic(t testing.TB, srv *sandbox.Server, appid, secret string) answer {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	return mustDo(t, srv, http.MethodGet, "/cgi-bin/token?"+q.Encode(), "")
}

func stable(t testing.TB, srv *sandbox.Server, force bool) answer {
	t.Helper()
	body := fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%v}`,
		sandbox.DefaultAppID, sandbox.DefaultAppSecret, force)
	return mustDo(t, srv, http.MethodPost, "/cgi-bin/stable_token", body)
}

// token fetches a valid stable access token or fails the test.
func token(t testing.TB, srv *sandbox.Server) string {
	t.Helper()
	a := stable(t, srv, false)
	if a.AccessToken == "" {
		t.Fatalf("stable_token: no token: %+v", a)
	}
	return a.AccessToken
}

func updateURL(base, at string) string {
	return base + sandbox.PathUpdatePath + "?access_token=" + url.QueryEscape(at)
}

func update(t testing.TB, srv *sandbox.Server, at, body string) answer {
	t.Helper()
	a, err := do(t.Context(), srv.Client(), http.MethodPost, updateURL(srv.URL, at), body)
	if err != nil {
		t.Fatalf("path/update: %v", err)
	}
	return a
}

// event is a valid path/update body.
func event(waybill, tok string, n int) string {
	b, _ := json.Marshal(map[string]any{
		"token": tok, "waybill_id": waybill, "action_time": 1700000000 + n,
		"action_type": 200001, "action_msg": fmt.Sprintf("step %d", n),
	})
	return string(b)
}
