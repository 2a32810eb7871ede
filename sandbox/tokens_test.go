package sandbox_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestClassicTokenCredentials(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	for _, tc := range []struct {
		name  string
		query url.Values
		want  int
	}{
		{"ok", url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DefaultAppID}, "secret": {sandbox.DefaultAppSecret}}, 0},
		{"grant_type missing", url.Values{"appid": {sandbox.DefaultAppID}, "secret": {sandbox.DefaultAppSecret}}, 40002},
		{"grant_type wrong", url.Values{"grant_type": {"password"}, "appid": {sandbox.DefaultAppID}, "secret": {sandbox.DefaultAppSecret}}, 40002},
		{"appid unknown", url.Values{"grant_type": {"client_credential"}, "appid": {"wxother"}, "secret": {sandbox.DefaultAppSecret}}, 40013},
		{"appid missing", url.Values{"grant_type": {"client_credential"}, "secret": {sandbox.DefaultAppSecret}}, 40013},
		{"secret wrong", url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DefaultAppID}, "secret": {"nope"}}, 40125},
		{"secret missing", url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DefaultAppID}}, 40125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustDo(t, srv, http.MethodGet, "/cgi-bin/token?"+tc.query.Encode(), "")
			if a.Status != http.StatusOK || a.ErrCode != tc.want {
				t.Fatalf("got HTTP %d errcode %d (%s), want errcode %d", a.Status, a.ErrCode, a.ErrMsg, tc.want)
			}
			if tc.want == 0 && (a.AccessToken == "" || a.ExpiresIn != 7200) {
				t.Fatalf("got %+v, want a token with expires_in 7200", a)
			}
			if tc.want != 0 && a.AccessToken != "" {
				t.Fatalf("error answer carries a token: %+v", a)
			}
		})
	}
}

func TestStableTokenCredentials(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AppID: "wxmine", AppSecret: "s3cret"})
	for _, tc := range []struct {
		name, method, body string
		want               int
	}{
		{"ok", http.MethodPost, `{"grant_type":"client_credential","appid":"wxmine","secret":"s3cret"}`, 0},
		{"grant_type wrong", http.MethodPost, `{"grant_type":"x","appid":"wxmine","secret":"s3cret"}`, 40002},
		{"appid unknown", http.MethodPost, `{"grant_type":"client_credential","appid":"wxsandbox00000000","secret":"s3cret"}`, 40013},
		{"secret wrong", http.MethodPost, `{"grant_type":"client_credential","appid":"wxmine","secret":"sandbox-app-secret"}`, 40125},
		{"not JSON", http.MethodPost, `grant_type=client_credential`, 47001},
		{"empty", http.MethodPost, ``, 44002},
		{"GET", http.MethodGet, ``, 43002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustDo(t, srv, tc.method, "/cgi-bin/stable_token", tc.body)
			if a.Status != http.StatusOK || a.ErrCode != tc.want {
				t.Fatalf("got HTTP %d errcode %d (%s), want errcode %d", a.Status, a.ErrCode, a.ErrMsg, tc.want)
			}
			if (tc.want == 0) != (a.AccessToken != "") {
				t.Fatalf("token %q with errcode %d", a.AccessToken, a.ErrCode)
			}
		})
	}
}

// TestClassicTokenReplacedAfterGrace: each fetch replaces the previous
// classic token, which then lives ClassicGrace more (40001 after).
func TestClassicTokenReplacedAfterGrace(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true})
	body := event("W1", "T", 1)

	first := classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret).AccessToken
	if a := update(t, srv, first, body); a.ErrCode != 0 {
		t.Fatalf("fresh token: errcode %d", a.ErrCode)
	}
	clk.Advance(time.Minute)
	second := classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret).AccessToken
	if second == first {
		t.Fatal("classic fetch returned the same token twice")
	}
	clk.Advance(5*time.Minute - time.Second)
	if a := update(t, srv, first, body); a.ErrCode != 0 {
		t.Fatalf("replaced token within grace: errcode %d, want 0", a.ErrCode)
	}
	clk.Advance(time.Second)
	if a := update(t, srv, first, body); a.ErrCode != 40001 {
		t.Fatalf("replaced token after grace: errcode %d, want 40001", a.ErrCode)
	}
	if a := update(t, srv, second, body); a.ErrCode != 0 {
		t.Fatalf("current token: errcode %d, want 0", a.ErrCode)
	}
	// The stable token is not touched by classic fetches.
	st := token(t, srv)
	classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	clk.Advance(time.Hour)
	if a := update(t, srv, st, body); a.ErrCode != 0 {
		t.Fatalf("stable token after classic fetches: errcode %d, want 0", a.ErrCode)
	}
}

func TestStableTokenSameWhileValid(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true})

	a := stable(t, srv, false)
	if a.ExpiresIn != 7200 {
		t.Fatalf("expires_in %d, want 7200", a.ExpiresIn)
	}
	clk.Advance(1000 * time.Second)
	b := stable(t, srv, false)
	if b.AccessToken != a.AccessToken || b.ExpiresIn != 6200 {
		t.Fatalf("second call: same token %v, expires_in %d; want same token, 6200", b.AccessToken == a.AccessToken, b.ExpiresIn)
	}
	// A classic fetch does not replace the stable token.
	classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret)
	if c := stable(t, srv, false); c.AccessToken != a.AccessToken {
		t.Fatal("a classic fetch replaced the stable token")
	}

	// In the last 5 minutes a plain call renews; the old token lives on.
	clk.Advance(6200*time.Second - 5*time.Minute + time.Second)
	c := stable(t, srv, false)
	if c.AccessToken == a.AccessToken || c.ExpiresIn != 7200 {
		t.Fatalf("in the renew window: same token %v, expires_in %d; want a new token, 7200", c.AccessToken == a.AccessToken, c.ExpiresIn)
	}
	body := event("W", "T", 1)
	if r := update(t, srv, a.AccessToken, body); r.ErrCode != 0 {
		t.Fatalf("renewed-from token before its expiry: errcode %d, want 0", r.ErrCode)
	}
	clk.Advance(5 * time.Minute)
	if r := update(t, srv, a.AccessToken, body); r.ErrCode != 42001 {
		t.Fatalf("renewed-from token after its expiry: errcode %d, want 42001", r.ErrCode)
	}
	if r := update(t, srv, c.AccessToken, body); r.ErrCode != 0 {
		t.Fatalf("current token: errcode %d, want 0", r.ErrCode)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"classic", "stable"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true, TokenTTL: time.Hour})
			var a answer
			if kind == "classic" {
				a = classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret)
			} else {
				a = stable(t, srv, false)
			}
			if a.ExpiresIn != 3600 {
				t.Fatalf("expires_in %d, want 3600", a.ExpiresIn)
			}
			body := event("W", "T", 1)
			clk.Advance(time.Hour - time.Millisecond)
			if r := update(t, srv, a.AccessToken, body); r.ErrCode != 0 {
				t.Fatalf("before expiry: errcode %d", r.ErrCode)
			}
			clk.Advance(time.Millisecond)
			if r := update(t, srv, a.AccessToken, body); r.ErrCode != 42001 {
				t.Fatalf("at expiry: errcode %d, want 42001", r.ErrCode)
			}
			if kind == "stable" {
				if b := stable(t, srv, false); b.AccessToken == a.AccessToken || b.ExpiresIn != 3600 {
					t.Fatalf("after expiry stable_token gave the old token or expires_in %d", b.ExpiresIn)
				}
			}
		})
	}
}

func TestStableForceRefresh(t *testing.T) {
	t.Parallel()
	clk := newClock() // 10:00:30 UTC = 18:00:30 in Beijing
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true})
	body := event("W", "T", 1)

	prev := token(t, srv)
	clk.Advance(time.Minute)
	a := stable(t, srv, true)
	if a.ErrCode != 0 || a.AccessToken == prev || a.ExpiresIn != 7200 {
		t.Fatalf("force refresh: %+v, want a new token", a)
	}
	// The replaced stable token keeps the grace, then 40001.
	clk.Advance(5*time.Minute - time.Second)
	if r := update(t, srv, prev, body); r.ErrCode != 0 {
		t.Fatalf("force-replaced token within grace: errcode %d", r.ErrCode)
	}
	clk.Advance(time.Second)
	if r := update(t, srv, prev, body); r.ErrCode != 40001 {
		t.Fatalf("force-replaced token after grace: errcode %d, want 40001", r.ErrCode)
	}
	// Within 30 s of the last force refresh it does not refresh: the
	// current token comes back and the call is not counted.
	cur := a.AccessToken
	for i := 2; i <= sandbox.StableForceRefreshPerDay; i++ {
		b := stable(t, srv, true) // the 30 s are long past here
		if b.ErrCode != 0 || b.AccessToken == cur {
			t.Fatalf("force refresh %d: %+v, want a new token", i, b)
		}
		cur = b.AccessToken
		clk.Advance(10 * time.Second)
		if i == sandbox.StableForceRefreshPerDay {
			break // past the daily limit every force refresh gets 45009
		}
		if c := stable(t, srv, true); c.ErrCode != 0 || c.AccessToken != cur {
			t.Fatalf("force refresh 10 s after refresh %d: errcode %d, new token %v; want the current one", i, c.ErrCode, c.AccessToken != cur)
		}
		clk.Advance(sandbox.StableForceRefreshInterval)
	}
	if b := stable(t, srv, true); b.ErrCode != 45009 || b.AccessToken != "" {
		t.Fatalf("force refresh 21: %+v, want errcode 45009", b)
	}
	if b := stable(t, srv, false); b.ErrCode != 0 || b.AccessToken != cur {
		t.Fatalf("plain call after the daily limit: %+v, want the current token", b)
	}
	// The day turns at midnight Beijing time (16:00 UTC).
	clk.Advance(6 * time.Hour)
	if b := stable(t, srv, true); b.ErrCode != 0 || b.AccessToken == cur {
		t.Fatalf("force refresh on the next Beijing day: %+v, want a new token", b)
	}
}

func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{AcceptAnyWaybill: true})
	body := event("W", "T", 1)
	st := token(t, srv)
	cl := classic(t, srv, sandbox.DefaultAppID, sandbox.DefaultAppSecret).AccessToken
	srv.RevokeTokens()
	for _, at := range []string{st, cl} {
		if r := update(t, srv, at, body); r.ErrCode != 40001 {
			t.Fatalf("revoked token: errcode %d, want 40001", r.ErrCode)
		}
	}
	fresh := token(t, srv)
	if fresh == st {
		t.Fatal("stable_token gave the revoked token again")
	}
	if r := update(t, srv, fresh, body); r.ErrCode != 0 {
		t.Fatalf("token fetched after revoke: errcode %d", r.ErrCode)
	}
}
