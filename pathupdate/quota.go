package pathupdate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// QuotaPath is WeChat's getApiQuota below the API base: the day's quota
// and the frequency limit of one API of the app.
const QuotaPath = "/cgi-bin/openapi/quota/get"

// Errcodes of getApiQuota.
const (
	ErrcodeQuotaBadPath      = 76003 // cgi_path without its leading "/" or with the host
	ErrcodeQuotaPathNotFound = 76021 // cgi_path is no API WeChat knows
)

// Quota is what getApiQuota answers for logistics.updatePath: the day's
// quota and, in the newer form of the answer, its frequency limits. A
// DailyLimit of 0 means WeChat reported none.
type Quota struct {
	DailyLimit int64 `json:"daily_limit"`
	Used       int64 `json:"used"`
	Remain     int64 `json:"remain"`
	// RateLimit is the API's own frequency limit; ComponentRateLimit the
	// limit of calls a third-party platform makes on the app's behalf.
	// Nil when the answer has none.
	RateLimit          *RateLimit `json:"rate_limit,omitempty"`
	ComponentRateLimit *RateLimit `json:"component_rate_limit,omitempty"`
}

// Spent reports whether WeChat has a daily limit for the API and nothing
// of it remains: every call until the daily reset is answered 45009.
func (q Quota) Spent() bool { return q.DailyLimit > 0 && q.Remain <= 0 }

// RateLimit is a frequency limit: CallCount calls per RefreshSecond
// seconds.
type RateLimit struct {
	CallCount     int64 `json:"call_count"`
	RefreshSecond int64 `json:"refresh_second"`
}

// PerSecond is the limit in calls per second; 0 when it is not a usable
// limit (a zero or negative count or period).
func (r *RateLimit) PerSecond() float64 {
	if r == nil || r.CallCount <= 0 || r.RefreshSecond <= 0 {
		return 0
	}
	return float64(r.CallCount) / float64(r.RefreshSecond)
}

// QuotaError is a getApiQuota answer with an errcode other than 0
// (76021: cgi_path unknown, 76003, a token errcode, -1, ...).
type QuotaError struct {
	ErrCode int
	ErrMsg  string
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("getApiQuota: errcode %d %s", e.ErrCode, e.ErrMsg)
}

// quotaReset is WeChat's daily reset: the quota counts the calls of a
// calendar day in China Standard Time (UTC+8, no daylight saving), so it
// starts again at 00:00 there (docs/quota.md cites the sources).
var quotaReset = time.FixedZone("CST", 8*60*60)

// NextQuotaReset is the first daily quota reset after t: the next 00:00
// China Standard Time.
func NextQuotaReset(t time.Time) time.Time {
	l := t.In(quotaReset)
	midnight := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, quotaReset)
	return midnight.AddDate(0, 0, 1)
}

// APIQuota asks WeChat's getApiQuota for logistics.updatePath's quota with
// an access_token from the client's source, over HTTPS whatever the
// transport (WeChat offers getApiQuota to no cloud function). A refused
// access_token is invalidated and the call made once more. The error is a
// *QuotaError when WeChat answered with an errcode, a *TokenError when no
// access_token could be had, ErrQuotaNeedsToken with no token source
// (openinterface.go), else a transport error; none carries the
// access_token.
func (c *Client) APIQuota(ctx context.Context) (Quota, error) {
	if c.oi != nil {
		return Quota{}, ErrQuotaNeedsToken
	}
	q, tok, err := c.askQuota(ctx)
	var qe *QuotaError
	if errors.As(err, &qe) && Classify(qe.ErrCode) == TokenInvalid && tok != "" {
		c.cfg.Tokens.Invalidate(ctx, tok)
		q, _, err = c.askQuota(ctx)
	}
	return q, err
}

func (c *Client) askQuota(ctx context.Context) (Quota, Secret, error) {
	tok, err := c.cfg.Tokens.Token(ctx)
	if err != nil {
		return Quota{}, "", err
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"cgi_path": updatePathPath})
	u := c.cfg.APIBase + QuotaPath + "?access_token=" + url.QueryEscape(tok.Reveal())
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Quota{}, tok, redactURLError(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Quota{}, tok, withCtxErr(ctx, redactURLError(err))
	}
	raw, status, err := readAnswer(resp)
	if err != nil {
		return Quota{}, tok, redactURLError(err)
	}
	if status != http.StatusOK {
		return Quota{}, tok, fmt.Errorf("getApiQuota: HTTP %d", status)
	}
	var a struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Quota   *struct {
			DailyLimit int64 `json:"daily_limit"`
			Used       int64 `json:"used"`
			Remain     int64 `json:"remain"`
		} `json:"quota"`
		RateLimit          *RateLimit `json:"rate_limit"`
		ComponentRateLimit *RateLimit `json:"component_rate_limit"`
	}
	if err := decodeJSON(raw, &a); err != nil {
		return Quota{}, tok, fmt.Errorf("getApiQuota: %w", err)
	}
	if a.ErrCode != 0 {
		return Quota{}, tok, &QuotaError{ErrCode: a.ErrCode, ErrMsg: scrubSecrets(a.ErrMsg, tok)}
	}
	if a.Quota == nil {
		return Quota{}, tok, errors.New("getApiQuota: answer without a quota")
	}
	return Quota{DailyLimit: a.Quota.DailyLimit, Used: a.Quota.Used, Remain: a.Quota.Remain,
		RateLimit: a.RateLimit, ComponentRateLimit: a.ComponentRateLimit}, tok, nil
}
