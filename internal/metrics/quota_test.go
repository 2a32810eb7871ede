package metrics_test

import (
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestQuotaMetrics: the quota gauges follow the readings, the resume time
// the pause, and the rate limiter's waits add up.
func TestQuotaMetrics(t *testing.T) {
	t.Parallel()
	m, url := newMetrics(t, metrics.Config{NoRuntimeCollectors: true})
	resume := time.Date(2026, 11, 30, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	for _, tt := range []struct {
		name string
		do   func()
		want map[string]float64
	}{
		{"before anything", func() {}, map[string]float64{
			"pathupdate_wechat_quota_limit": 0, "pathupdate_wechat_quota_used": 0, "pathupdate_wechat_quota_remaining": 0,
			"pathupdate_wechat_quota_resume_timestamp_seconds": 0, "pathupdate_rate_limit_wait_seconds_total": 0, "pathupdate_rate_limit_share": 0}},
		{"a reading and waits", func() {
			m.QuotaSeen(pathupdate.Quota{DailyLimit: 1000, Used: 400, Remain: 600})
			m.RateLimited(250*time.Millisecond, 16.5)
			m.RateLimited(0, 16.5)
			m.RateLimited(500*time.Millisecond, 25)
		}, map[string]float64{"pathupdate_wechat_quota_limit": 1000, "pathupdate_wechat_quota_used": 400, "pathupdate_wechat_quota_remaining": 600,
			"pathupdate_rate_limit_wait_seconds_total": 0.75, "pathupdate_rate_limit_share": 25}},
		{"spent and paused", func() {
			m.QuotaSeen(pathupdate.Quota{DailyLimit: 1000, Used: 1000})
			m.QuotaPaused(resume)
		}, map[string]float64{"pathupdate_wechat_quota_remaining": 0, "pathupdate_wechat_quota_resume_timestamp_seconds": float64(resume.Unix())}},
		{"resumed", func() { m.QuotaPaused(time.Time{}) }, map[string]float64{"pathupdate_wechat_quota_resume_timestamp_seconds": 0}},
	} {
		tt.do()
		f := scrape(t, url)
		for name, want := range tt.want {
			if got := f.get(t, name); got != want {
				t.Errorf("%s: %s = %v, want %v", tt.name, name, got, want)
			}
		}
	}
}
