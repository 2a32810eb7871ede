package pathupdate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Limits WeChat puts on stable_token with force_refresh:true.
const (
	forceRefreshPerDay = 20
	forceRefreshGap    = 30 * time.Second
)

// stableSource fetches from POST /cgi-bin/stable_token. WeChat hands every
// caller the same token while it is valid, so any number of workers can
// share an app without invalidating each other.
type stableSource struct {
	cfg   TokenConfig
	hc    *http.Client
	cache *tokenCache

	forceMu sync.Mutex
	forced  []time.Time // force_refresh calls in the last 24 h, oldest first
}

// NewStableTokenSource returns the default TokenSource: POST
// {APIBase}/cgi-bin/stable_token with force_refresh:false, cached until
// RefreshBefore its expiry. When WeChat refused a token (Invalidate) and a
// normal refetch hands the same token back, the source asks with
// force_refresh:true, at most 20 times in 24 h and 30 s apart (WeChat's
// allowance, counted per source); beyond that Token returns a TokenError
// of Kind TokenInvalid wrapping ErrForceRefreshLimit and logs a warning.
func NewStableTokenSource(cfg TokenConfig) (TokenSource, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &stableSource{cfg: cfg, hc: noRedirects(cfg.HTTPClient)}
	s.cache = &tokenCache{source: "stable", onFetch: cfg.OnFetch, fetch: s.fetch, now: cfg.Now, refreshBefore: cfg.RefreshBefore,
		fetchTimeout: DefaultCallTimeout, log: cfg.Logger}
	return s, nil
}

func (s *stableSource) Token(ctx context.Context) (Secret, error) { return s.cache.Token(ctx) }

func (s *stableSource) Invalidate(ctx context.Context, tok Secret) { s.cache.Invalidate(ctx, tok) }

// Format keeps fmt away from the unexported fields (the secret, the token).
func (s *stableSource) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "pathupdate.stableTokenSource{appid: %s}", s.cfg.AppID)
}

func (s *stableSource) fetch(ctx context.Context, refused Secret) (Secret, time.Duration, error) {
	tok, lifetime, err := s.request(ctx, false)
	if err != nil || refused == "" || tok != refused {
		return tok, lifetime, err
	}
	// WeChat refused this token a moment ago and still hands it out: only
	// a forced refresh replaces it.
	if next, ok := s.takeForce(); !ok {
		s.cfg.Logger.Warn().Str("appid", s.cfg.AppID).Time("next_force_refresh", next).
			Msg("access_token refused and stable_token returns it again; force_refresh allowance exhausted, pausing")
		return "", 0, &TokenError{Op: "stable_token", Err: ErrForceRefreshLimit, kind: TokenInvalid}
	}
	s.cfg.Logger.Info().Str("appid", s.cfg.AppID).Msg("access_token refused and returned again; asking stable_token with force_refresh")
	return s.request(ctx, true)
}

// takeForce records a force_refresh if the allowance permits one now;
// otherwise it reports when the next one will be permitted.
func (s *stableSource) takeForce() (time.Time, bool) {
	s.forceMu.Lock()
	defer s.forceMu.Unlock()
	now := s.cfg.Now()
	// A rolling 24 h window is stricter than WeChat's calendar day, so it
	// never exceeds the daily allowance whenever that day starts.
	i := 0
	for i < len(s.forced) && now.Sub(s.forced[i]) >= 24*time.Hour {
		i++
	}
	s.forced = s.forced[i:]
	if n := len(s.forced); n > 0 {
		last := s.forced[n-1]
		if now.Sub(last) < forceRefreshGap {
			return last.Add(forceRefreshGap), false
		}
		if n >= forceRefreshPerDay {
			return s.forced[0].Add(24 * time.Hour), false
		}
	}
	s.forced = append(s.forced, now)
	return time.Time{}, true
}

func (s *stableSource) request(ctx context.Context, force bool) (Secret, time.Duration, error) {
	body, err := json.Marshal(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", s.cfg.AppID, s.cfg.AppSecret.Reveal(), force})
	if err != nil {
		return "", 0, &TokenError{Op: "stable_token", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.APIBase+"/cgi-bin/stable_token", bytes.NewReader(body))
	if err != nil {
		return "", 0, &TokenError{Op: "stable_token", Err: redactURLError(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	start := s.cfg.Now()
	tok, lifetime, err := doTokenRequest(s.hc, req, "stable_token", s.cfg.AppSecret)
	ev := s.cfg.Logger.Debug().Str("op", "stable_token").Bool("force_refresh", force).Dur("duration", s.cfg.Now().Sub(start))
	if err != nil {
		ev.Err(err).Msg("access_token fetch failed")
	} else {
		ev.Dur("expires_in", lifetime).Msg("access_token fetched")
	}
	return tok, lifetime, err
}
