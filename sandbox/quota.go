package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// QuotaPath is the URL path of getApiQuota.
const QuotaPath = "/cgi-bin/openapi/quota/get"

// Errcodes of getApiQuota.
const (
	ErrcodeQuotaBadPath      = 76003
	ErrcodeQuotaPathNotFound = 76021
)

// quotaDay is the zone of WeChat's day: its daily quota starts again at
// 00:00 China Standard Time.
var quotaDay = time.FixedZone("CST", 8*60*60)

// quotaCounters count path/update calls against Faults.DailyQuota and
// Faults.SecondQuota. Guarded by Sandbox.mu.
type quotaCounters struct {
	day        time.Time // the day (00:00 CST) used counts in
	used       int64     // calls let through this day
	second     time.Time // the wall-clock second secondUsed counts in
	secondUsed int
	asks       int64 // getApiQuota calls answered
}

// rollLocked starts a new day's count when now is in another day than
// the one counted (by Config.Now).
func (q *quotaCounters) rollLocked(now time.Time) {
	l := now.In(quotaDay)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, quotaDay)
	if !day.Equal(q.day) {
		q.day, q.used = day, 0
	}
}

// limitsLocked decides the daily quota (45009) and the frequency limit
// (45011) of one call, counting it when it passes both.
func (s *Sandbox) limitsLocked(now time.Time, f Faults) int {
	q := &s.limits
	q.rollLocked(now)
	if f.DailyQuota > 0 && q.used >= int64(f.DailyQuota) {
		return ErrcodeDailyQuota
	}
	if f.SecondQuota > 0 {
		if sec := now.Truncate(time.Second); !sec.Equal(q.second) {
			q.second, q.secondUsed = sec, 0
		}
		q.secondUsed++
		if q.secondUsed > f.SecondQuota {
			return ErrcodeMinuteQuota
		}
	}
	q.used++
	return ErrcodeOK
}

// NextDay simulates WeChat's daily reset: the day's count of calls starts
// again from 0, so a spent DailyQuota lets calls through again. POST
// /sandbox/next-day does the same from another process; Reset does it too.
func (s *Sandbox) NextDay() {
	s.mu.Lock()
	s.limits.used = 0
	s.mu.Unlock()
	s.log.Info().Msg("sandbox: a new quota day")
}

// QuotaNow is what getApiQuota would answer now: the day's quota of
// path/update and its frequency limit.
func (s *Sandbox) QuotaNow() QuotaAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotaLocked(s.cfg.Now())
}

// QuotaAsks counts the getApiQuota calls answered since New.
func (s *Sandbox) QuotaAsks() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits.asks
}

// QuotaAnswer is the body of a getApiQuota answer past its errcode. A
// DailyQuota of 0 (unlimited) is answered as daily_limit 0: no limit.
type QuotaAnswer struct {
	Quota struct {
		DailyLimit int64 `json:"daily_limit"`
		Used       int64 `json:"used"`
		Remain     int64 `json:"remain"`
	} `json:"quota"`
	// RateLimit is SecondQuota per second, else MinuteQuota per 60
	// seconds; absent when neither is set.
	RateLimit *QuotaRate `json:"rate_limit,omitempty"`
}

// QuotaRate is getApiQuota's rate_limit: CallCount calls per
// RefreshSecond seconds.
type QuotaRate struct {
	CallCount     int `json:"call_count"`
	RefreshSecond int `json:"refresh_second"`
}

func (s *Sandbox) quotaLocked(now time.Time) QuotaAnswer {
	s.limits.rollLocked(now)
	f := s.faults
	var a QuotaAnswer
	a.Quota.Used = s.limits.used
	if f.DailyQuota > 0 {
		a.Quota.DailyLimit = int64(f.DailyQuota)
		a.Quota.Remain = max(a.Quota.DailyLimit-a.Quota.Used, 0)
	}
	count, period := f.SecondQuota, 1
	if count == 0 {
		count, period = f.MinuteQuota, 60
	}
	if count > 0 {
		a.RateLimit = &QuotaRate{CallCount: count, RefreshSecond: period}
	}
	return a
}

func (s *Sandbox) quotaRoutes(m *http.ServeMux) {
	m.HandleFunc(QuotaPath, s.handleQuota)
	m.HandleFunc("POST /sandbox/next-day", func(w http.ResponseWriter, _ *http.Request) {
		s.NextDay()
		adminOK(w)
	})
}

// handleQuota is POST /cgi-bin/openapi/quota/get: the quota of
// path/update, the only API the sandbox knows (76021 for any other).
func (s *Sandbox) handleQuota(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeErrcode(w, ErrcodeRequirePOST)
		return
	}
	if code := s.checkAccessToken(r); code != ErrcodeOK {
		writeErrcode(w, code)
		return
	}
	var body struct {
		CGIPath string `json:"cgi_path"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if len(b) == 0 {
		writeErrcode(w, ErrcodeEmptyBody)
		return
	}
	if json.Unmarshal(b, &body) != nil {
		writeErrcode(w, ErrcodeDataFormat)
		return
	}
	switch {
	case !strings.HasPrefix(body.CGIPath, "/"):
		writeErrcode(w, ErrcodeQuotaBadPath)
		return
	case body.CGIPath != PathUpdatePath:
		writeErrcode(w, ErrcodeQuotaPathNotFound)
		return
	}
	s.mu.Lock()
	s.limits.asks++
	a := s.quotaLocked(s.cfg.Now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		QuotaAnswer
	}{0, "ok", a})
}
