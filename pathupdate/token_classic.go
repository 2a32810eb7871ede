package pathupdate

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// classicSource fetches from GET /cgi-bin/token. Every such call makes a
// new token and leaves the previous one valid for only about 5 more
// minutes, so several processes each running a classic source invalidate
// each other's tokens (the "40001 storm"). The client copes, one
// Invalidate and retry at a time, but the stable source is the right
// choice for more than one process.
type classicSource struct {
	cfg   TokenConfig
	hc    *http.Client
	cache *tokenCache
}

// NewClassicTokenSource returns a TokenSource on GET
// {APIBase}/cgi-bin/token, cached until RefreshBefore its expiry. After
// Invalidate the next Token fetches anew, which always yields a new token.
// Prefer NewStableTokenSource when more than one process shares the app.
func NewClassicTokenSource(cfg TokenConfig) (TokenSource, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &classicSource{cfg: cfg, hc: noRedirects(cfg.HTTPClient)}
	s.cache = &tokenCache{source: "classic", onFetch: cfg.OnFetch, fetch: s.fetch, now: cfg.Now, refreshBefore: cfg.RefreshBefore,
		fetchTimeout: DefaultCallTimeout, log: cfg.Logger}
	return s, nil
}

func (s *classicSource) Token(ctx context.Context) (Secret, error) { return s.cache.Token(ctx) }

func (s *classicSource) Invalidate(ctx context.Context, tok Secret) { s.cache.Invalidate(ctx, tok) }

// Format keeps fmt away from the unexported fields (the secret, the token).
func (s *classicSource) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "pathupdate.classicTokenSource{appid: %s}", s.cfg.AppID)
}

func (s *classicSource) fetch(ctx context.Context, _ Secret) (Secret, time.Duration, error) {
	q := url.Values{
		"grant_type": {"client_credential"},
		"appid":      {s.cfg.AppID},
		"secret":     {s.cfg.AppSecret.Reveal()},
	}
	// The secret travels in the query: every error below goes through
	// redactURLError, which turns it into secret=REDACTED.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.APIBase+"/cgi-bin/token?"+q.Encode(), nil)
	if err != nil {
		return "", 0, &TokenError{Op: "token", Err: redactURLError(err)}
	}
	start := s.cfg.Now()
	tok, lifetime, err := doTokenRequest(s.hc, req, "token", s.cfg.AppSecret)
	ev := s.cfg.Logger.Debug().Str("op", "token").Dur("duration", s.cfg.Now().Sub(start))
	if err != nil {
		ev.Err(err).Msg("access_token fetch failed")
	} else {
		ev.Dur("expires_in", lifetime).Msg("access_token fetched")
	}
	return tok, lifetime, err
}
