package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limits of stable_token's force_refresh mode, as WeChat documents them.
const (
	StableForceRefreshPerDay   = 20
	StableForceRefreshInterval = 30 * time.Second
)

// beijing is the zone WeChat's daily quotas reset in (UTC+8, no DST).
var beijing = time.FixedZone("CST", 8*60*60)

type tokenKind int

const (
	classicToken tokenKind = iota + 1
	stableToken
)

// accessToken is one issued access token.
type accessToken struct {
	kind    tokenKind
	expires time.Time
	// deadline is when a replaced token stops being accepted (40001);
	// zero while it has not been replaced.
	deadline time.Time
}

// tokenCheck is the verdict on an access_token of a path/update call.
type tokenCheck int

const (
	tokenValid tokenCheck = iota
	tokenInvalid
	tokenExpired
)

// tokenStore holds every access token issued and the counts of the token
// endpoints. It has its own mutex: token checks are on every path/update.
type tokenStore struct {
	mu      sync.Mutex
	byValue map[string]*accessToken
	classic string // the current classic token, "" when none
	stable  string // the current stable token, "" when none

	forceDay   string    // Beijing date of forceCount
	forceCount int       // successful force refreshes on forceDay
	lastForce  time.Time // last successful force refresh

	classicCalls, stableCalls   int64
	classicIssued, stableIssued int64
}

func (t *tokenStore) init() { t.byValue = make(map[string]*accessToken) }

// check says whether value is an access token path/update accepts at now.
func (t *tokenStore) check(value string, now time.Time) tokenCheck {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.byValue[value]
	switch {
	case !ok:
		return tokenInvalid
	case !tok.deadline.IsZero() && !now.Before(tok.deadline):
		return tokenInvalid // replaced, past its grace: "not latest"
	case !now.Before(tok.expires):
		return tokenExpired
	}
	return tokenValid
}

// issue makes a new token of kind valid for ttl. The caller holds t.mu.
func (t *tokenStore) issue(kind tokenKind, now time.Time, ttl time.Duration) string {
	t.sweep(now, ttl)
	v := newID(48)
	t.byValue[v] = &accessToken{kind: kind, expires: now.Add(ttl)}
	if kind == classicToken {
		t.classicIssued++
	} else {
		t.stableIssued++
	}
	return v
}

// retire gives the token value grace more to live, if that is shorter than
// its natural life. The caller holds t.mu.
func (t *tokenStore) retire(value string, now time.Time, grace time.Duration) {
	tok, ok := t.byValue[value]
	if !ok {
		return
	}
	d := now.Add(max(grace, 0))
	if d.Before(tok.expires) {
		tok.deadline = d
	}
}

// sweep forgets tokens dead for longer than ttl so a long run that fetches
// many classic tokens does not grow without bound; a forgotten token gets
// 40001 instead of 42001, which WeChat does for old tokens as well. Only
// runs when the map is big, to keep issue cheap. The caller holds t.mu.
func (t *tokenStore) sweep(now time.Time, ttl time.Duration) {
	if len(t.byValue) < 1024 {
		return
	}
	for v, tok := range t.byValue {
		end := tok.expires
		if !tok.deadline.IsZero() && tok.deadline.Before(end) {
			end = tok.deadline
		}
		if now.Sub(end) > ttl && v != t.classic && v != t.stable {
			delete(t.byValue, v)
		}
	}
}

// RevokeTokens makes every access token issued so far invalid now: their
// next use gets 40001, and both token endpoints issue new ones.
func (s *Sandbox) RevokeTokens() {
	t := &s.tokens
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.byValue)
	t.classic, t.stable = "", ""
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// checkCredentials answers the errcode for grant type and credentials, 0
// when they are right.
func (s *Sandbox) checkCredentials(grantType, appID, secret string) int {
	switch {
	case grantType != "client_credential":
		return ErrcodeInvalidGrantType
	case appID != s.cfg.AppID:
		return ErrcodeInvalidAppID
	case secret != s.cfg.AppSecret:
		return ErrcodeInvalidSecret
	}
	return ErrcodeOK
}

// handleClassicToken is GET /cgi-bin/token: every call issues a new token
// and retires the previous one to ClassicGrace.
func (s *Sandbox) handleClassicToken(w http.ResponseWriter, r *http.Request) {
	t := &s.tokens
	t.mu.Lock()
	t.classicCalls++
	t.mu.Unlock()

	q := r.URL.Query()
	if code := s.checkCredentials(q.Get("grant_type"), q.Get("appid"), q.Get("secret")); code != ErrcodeOK {
		writeErrcode(w, code)
		return
	}
	now := s.cfg.Now()
	t.mu.Lock()
	if t.classic != "" {
		t.retire(t.classic, now, s.cfg.ClassicGrace)
	}
	t.classic = t.issue(classicToken, now, s.cfg.TokenTTL)
	v := t.classic
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, tokenAnswer{v, wholeSeconds(s.cfg.TokenTTL)})
}

// handleStableToken is POST /cgi-bin/stable_token.
func (s *Sandbox) handleStableToken(w http.ResponseWriter, r *http.Request) {
	t := &s.tokens
	t.mu.Lock()
	t.stableCalls++
	t.mu.Unlock()

	if r.Method != http.MethodPost {
		writeErrcode(w, ErrcodeRequirePOST)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return // the client is gone
	}
	if len(body) == 0 {
		writeErrcode(w, ErrcodeEmptyBody)
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeErrcode(w, ErrcodeDataFormat)
		return
	}
	if code := s.checkCredentials(req.GrantType, req.AppID, req.Secret); code != ErrcodeOK {
		writeErrcode(w, code)
		return
	}
	v, expiresIn, code := s.stableToken(req.ForceRefresh)
	if code != ErrcodeOK {
		writeErrcode(w, code)
		return
	}
	writeJSON(w, http.StatusOK, tokenAnswer{v, expiresIn})
}

// stableToken decides a stable_token answer for valid credentials.
func (s *Sandbox) stableToken(force bool) (value string, expiresIn int64, errcode int) {
	t := &s.tokens
	now := s.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()

	if force {
		day := now.In(beijing).Format(time.DateOnly)
		if day != t.forceDay {
			t.forceDay, t.forceCount = day, 0
		}
		if t.forceCount >= StableForceRefreshPerDay {
			return "", 0, ErrcodeDailyQuota
		}
		// Within 30 s of the last force refresh WeChat does not refresh:
		// the call is answered as a plain one and not counted.
		if t.lastForce.IsZero() || now.Sub(t.lastForce) >= StableForceRefreshInterval {
			t.forceCount++
			t.lastForce = now
			if t.stable != "" {
				t.retire(t.stable, now, s.cfg.ClassicGrace)
			}
			t.stable = t.issue(stableToken, now, s.cfg.TokenTTL)
			return t.stable, wholeSeconds(s.cfg.TokenTTL), ErrcodeOK
		}
	}

	if cur, ok := t.byValue[t.stable]; ok && now.Before(cur.expires) {
		left := cur.expires.Sub(now)
		if s.cfg.StableRenewWindow < 0 || left > s.cfg.StableRenewWindow {
			return t.stable, wholeSeconds(left), ErrcodeOK
		}
		// In the renew window: a new token; the old one lives to its expiry.
	}
	t.stable = t.issue(stableToken, now, s.cfg.TokenTTL)
	return t.stable, wholeSeconds(s.cfg.TokenTTL), ErrcodeOK
}
