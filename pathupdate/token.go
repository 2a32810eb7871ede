package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// TokenSource hands out WeChat access_tokens.
type TokenSource interface {
	// Token returns an access_token valid now, from cache or fetched.
	// Errors are *TokenError, or the caller's ctx error wrapped when it
	// gave up waiting.
	Token(ctx context.Context) (Secret, error)
	// Invalidate tells the source WeChat refused tok (40001/40014/42001/41001).
	// The next Token call returns a different token if one can be had: the
	// cached one is dropped, but only if it is still tok, so 100 goroutines
	// invalidating the same token cause one refetch, not 100.
	Invalidate(ctx context.Context, tok Secret)
}

// Defaults of TokenConfig and ClientConfig.
const (
	DefaultAPIBase       = "https://api.weixin.qq.com"
	DefaultHTTPTimeout   = 30 * time.Second // whole-request bound of NewHTTPClient's client when none is given
	DefaultRefreshBefore = 5 * time.Minute
	DefaultCallTimeout   = 10 * time.Second // one updatePath request, and one token fetch
)

// ErrForceRefreshLimit is wrapped by the TokenError a stable source returns
// when WeChat keeps handing back a token it refused and the
// force_refresh allowance (20 a day, 30 s apart) does not permit another
// forced refresh yet. The error's Kind is TokenInvalid: a worker pauses
// rather than burn the daily allowance.
var ErrForceRefreshLimit = errors.New("force_refresh allowance exhausted (20 a day, 30 s apart)")

// TokenConfig configures the stable and classic token sources (and gives
// the file source its clock and logger).
type TokenConfig struct {
	// APIBase is the WeChat API root. Default DefaultAPIBase.
	APIBase string
	// AppID of the mini program / official account. Required for stable and classic.
	AppID string
	// AppSecret of the app. Required for stable and classic. Never logged.
	AppSecret Secret
	// HTTPClient for token requests. Default NewHTTPClient(DefaultHTTPTimeout).
	// Redirects are never followed whatever client is given.
	HTTPClient *http.Client
	// RefreshBefore: a token is refetched this long before it expires.
	// Default DefaultRefreshBefore (5 min); never more than half the
	// lifetime WeChat states, so short-lived tokens are still used.
	RefreshBefore time.Duration
	// Now is the clock of token lifetimes and of the force_refresh
	// allowance. Default time.Now.
	Now func() time.Time
	// Logger receives a debug line per fetch and warnings, never a token or
	// the secret. Default: the zero Logger, which drops everything.
	Logger zerolog.Logger
	// OnFetch, if set, is told about every fetch that reached the token
	// endpoint (or read the token file): the source's name ("stable",
	// "classic", "file") and the fetch's error, nil on success. For
	// metrics; it must be quick.
	OnFetch func(source string, err error)
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c TokenConfig) WithDefaults() TokenConfig {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient(DefaultHTTPTimeout)
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = DefaultRefreshBefore
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports what the stable and classic sources cannot work
// without, as FieldErrors.
func (c TokenConfig) Validate() error {
	errs := FieldErrors{Prefix: "pathupdate: TokenConfig."}
	c.validate(&errs)
	return errs.Err()
}

func (c TokenConfig) validate(errs *FieldErrors) {
	if p := apiBaseProblem(c.APIBase); p != "" {
		errs.Add("APIBase", "%s", p)
	}
	if c.AppID == "" {
		errs.Add("AppID", "empty: the stable and classic token sources need the app's id")
	}
	if c.AppSecret == "" {
		errs.Add("AppSecret", "empty: the stable and classic token sources need the app's secret")
	}
	if c.RefreshBefore < 0 {
		errs.Add("RefreshBefore", "%v: use a positive duration or 0 for the default %v", c.RefreshBefore, DefaultRefreshBefore)
	}
}

// apiBaseProblem says what is wrong with base as the WeChat API root; ""
// when nothing is. Credentials in it are refused: they would be sent to
// every host the URL names and end up in logs of the URL.
func apiBaseProblem(base string) string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Sprintf("%q: use an http(s) URL without query or credentials, e.g. %s", redactURLUser(base, u, err), DefaultAPIBase)
	}
	return ""
}

// redactURLUser hides a password written into a URL before the URL is
// quoted in a message.
func redactURLUser(raw string, u *url.URL, err error) string {
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
		return u.String()
	}
	return raw
}

// TokenError is the error of a token request. It never contains the app
// secret or a token.
type TokenError struct {
	Op      string // "stable_token", "token", "token_file", "static_token"
	ErrCode int    // WeChat's errcode, 0 when WeChat gave none
	ErrMsg  string // WeChat's errmsg
	Err     error  // transport, HTTP status or decoding failure

	kind Kind // when set, overrides what Kind derives from ErrCode/Err
}

func (e *TokenError) Error() string {
	switch {
	case e.ErrCode != 0 && e.Err != nil:
		return fmt.Sprintf("pathupdate: %s: errcode %d %s: %v", e.Op, e.ErrCode, e.ErrMsg, e.Err)
	case e.ErrCode != 0:
		return fmt.Sprintf("pathupdate: %s: errcode %d %s", e.Op, e.ErrCode, e.ErrMsg)
	case e.Err != nil:
		return fmt.Sprintf("pathupdate: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("pathupdate: %s failed", e.Op)
}

func (e *TokenError) Unwrap() error { return e.Err }

// Kind says what a worker should do: ConfigBroken for credential and
// account errcodes (40013, 40125, 40164, 48001) and for any other errcode
// the token endpoint answers (a human must look), Throttled for quotas
// (45009, 45011), Transient for -1, network failures, non-200 HTTP and
// answers that are not JSON, TokenInvalid when a refused token cannot be
// replaced (ErrForceRefreshLimit, a token file that still holds it).
func (e *TokenError) Kind() Kind {
	if e.kind != 0 {
		return e.kind
	}
	switch e.ErrCode {
	case 0:
		return Transient
	case ErrcodeSystemError:
		return Transient
	case ErrcodeMinuteQuota, ErrcodeDailyQuota:
		return Throttled
	}
	return ConfigBroken
}

// Fix says, for a person, what to change when WeChat refuses the app's
// credentials or account (Kind ConfigBroken); "" for other errors. It names
// the settings by their command-line flags and environment variables.
func (e *TokenError) Fix() string {
	if e.Kind() != ConfigBroken {
		return ""
	}
	switch e.ErrCode {
	case ErrcodeInvalidAppID:
		return "WeChat does not know the AppID: check --appid (WECHAT_APPID)"
	case ErrcodeInvalidSecret:
		return "WeChat refuses the AppSecret for this AppID: check --appid and --appsecret / --appsecret-file (WECHAT_APPID, WECHAT_APPSECRET, WECHAT_APPSECRET_FILE)"
	case ErrcodeIPNotWhitelisted:
		return "this machine's outbound IP is not on the account's API IP whitelist: add it in the WeChat platform (Development > Basic configuration)"
	case ErrcodeSecretFrozen:
		return "the AppSecret is frozen: an administrator must unfreeze it in the WeChat platform"
	case ErrcodeAPIUnauthorized:
		return "the account is not authorised for this API: check the account's permissions in the WeChat platform"
	}
	return "WeChat refuses the app's credentials: check --appid and --appsecret / --appsecret-file (WECHAT_APPID, WECHAT_APPSECRET, WECHAT_APPSECRET_FILE) and the account's API IP whitelist"
}

// refreshMargin is how long before expiry a token of the given lifetime is
// refetched: RefreshBefore, but at most half the lifetime.
func refreshMargin(refreshBefore, lifetime time.Duration) time.Duration {
	return min(refreshBefore, lifetime/2)
}

// fetchFunc gets a token from WeChat. refused is the token last refused
// (Invalidate) and not yet replaced, "" when none. It returns the token
// and its lifetime as WeChat states it.
type fetchFunc func(ctx context.Context, refused Secret) (Secret, time.Duration, error)

// tokenCache is the caching and single-flight core of the stable and
// classic sources: one fetch at a time however many goroutines ask, the
// fetch detached from any single caller's ctx so one impatient caller does
// not fail the others, every caller waiting on its own ctx.
type tokenCache struct {
	source        string
	onFetch       func(source string, err error)
	fetch         fetchFunc
	now           func() time.Time
	refreshBefore time.Duration
	fetchTimeout  time.Duration
	log           zerolog.Logger

	mu        sync.Mutex
	tok       Secret
	refreshAt time.Time // refetch from here on
	expiresAt time.Time // WeChat stops taking tok here
	refused   Secret    // invalidated and not yet replaced
	inflight  *tokenFetch
}

// tokenFetch is one fetch in flight; done is closed when tok/err are set.
type tokenFetch struct {
	done    chan struct{}
	tok     Secret
	err     error
	waiters int // callers that joined it, under tokenCache.mu (tests read it)
}

func (c *tokenCache) Token(ctx context.Context) (Secret, error) {
	c.mu.Lock()
	if c.tok != "" && c.now().Before(c.refreshAt) {
		tok := c.tok
		c.mu.Unlock()
		return tok, nil
	}
	if err := ctx.Err(); err != nil {
		c.mu.Unlock()
		return "", fmt.Errorf("pathupdate: waiting for access_token: %w", err)
	}
	f := c.inflight
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		c.inflight = f
		refused := c.refused
		// Detached from ctx on purpose (see type comment), bounded by
		// fetchTimeout so a hung request cannot block every later fetch.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		go func() {
			defer cancel()
			c.run(fctx, f, refused)
		}()
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("pathupdate: waiting for access_token: %w", ctx.Err())
	}
}

func (c *tokenCache) run(ctx context.Context, f *tokenFetch, refused Secret) {
	start := c.now()
	tok, lifetime, err := c.fetch(ctx, refused)
	if c.onFetch != nil {
		c.onFetch(c.source, err)
	}

	c.mu.Lock()
	switch {
	case err == nil:
		c.tok = tok
		c.expiresAt = start.Add(lifetime)
		c.refreshAt = c.expiresAt.Add(-refreshMargin(c.refreshBefore, lifetime))
		if tok != c.refused {
			c.refused = ""
		}
		f.tok = tok
	case c.tok != "" && c.now().Before(c.expiresAt):
		// A refresh ahead of expiry failed but the cached token still
		// works: keep serving it rather than stop every delivery. The next
		// Token call tries again.
		c.log.Warn().Err(err).Time("expires_at", c.expiresAt).Msg("access_token refresh failed; using the cached token until it expires")
		f.tok = c.tok
	default:
		f.err = err
	}
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}

func (c *tokenCache) Invalidate(_ context.Context, tok Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok != "" && c.tok == tok {
		c.tok = ""
		c.refused = tok
	}
}

// tokenAnswer is the JSON of both token endpoints.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
}

// doTokenRequest sends req and decodes a token answer; every failure is a
// *TokenError free of the secret and of any token.
func doTokenRequest(hc *http.Client, req *http.Request, op string, secret Secret) (Secret, time.Duration, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, &TokenError{Op: op, Err: redactURLError(err)}
	}
	body, status, err := readAnswer(resp)
	if err != nil {
		return "", 0, &TokenError{Op: op, Err: redactURLError(err)}
	}
	if status != http.StatusOK {
		return "", 0, &TokenError{Op: op, Err: fmt.Errorf("HTTP %d from the token endpoint", status)}
	}
	var a tokenAnswer
	if err := decodeJSON(body, &a); err != nil {
		return "", 0, &TokenError{Op: op, Err: err}
	}
	if a.ErrCode != 0 {
		return "", 0, &TokenError{Op: op, ErrCode: a.ErrCode, ErrMsg: scrubSecrets(a.ErrMsg, secret)}
	}
	if a.AccessToken == "" {
		return "", 0, &TokenError{Op: op, Err: errors.New("answer has neither access_token nor errcode")}
	}
	// An expires_in of 0 or less gives a token usable now and never cached.
	return Secret(a.AccessToken), time.Duration(max(a.ExpiresIn, 0)) * time.Second, nil
}

// noRedirects returns a shallow copy of hc that never follows a redirect:
// WeChat does not redirect, and following one would hand the URL (with
// its access_token or secret) and a Referer to wherever it points.
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}
