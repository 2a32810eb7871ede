package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// quotaMetrics are WeChat's quota of logistics.updatePath as getApiQuota
// last answered (every worker exports the same reading, from the quota
// bucket), the pause of a spent quota, and the rate limiter's waits.
type quotaMetrics struct {
	limit, used, remaining prometheus.Gauge
	resume                 prometheus.Gauge
	rateWait               prometheus.Counter
	rateShare              prometheus.Gauge
}

var _ worker.QuotaObserver = (*Metrics)(nil)

func newQuotaMetrics() quotaMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	}
	return quotaMetrics{
		limit:     g("wechat_quota_limit", "Daily quota of logistics.updatePath as getApiQuota last answered (daily_limit); 0 until known or when WeChat reports none."),
		used:      g("wechat_quota_used", "Calls of logistics.updatePath WeChat counted today, as getApiQuota last answered (used)."),
		remaining: g("wechat_quota_remaining", "Calls of logistics.updatePath left today, as getApiQuota last answered (remain)."),
		resume: g("wechat_quota_resume_timestamp_seconds",
			"While delivery is paused for a spent daily quota (45009): when it resumes at the latest (WeChat's daily reset), Unix seconds; 0 when not paused."),
		rateWait: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rate_limit_wait_seconds_total",
			Help: "Time calls spent waiting for this worker's share of --rate-limit before going out (not attempts)."}),
		rateShare: g("rate_limit_share", "Calls per second this worker may make: its share of --rate-limit among the live workers; 0 for no limit."),
	}
}

func (q quotaMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{q.limit, q.used, q.remaining, q.resume, q.rateWait, q.rateShare}
}

// QuotaSeen implements worker.QuotaObserver.
func (m *Metrics) QuotaSeen(q pathupdate.Quota) {
	m.quota.limit.Set(float64(q.DailyLimit))
	m.quota.used.Set(float64(q.Used))
	m.quota.remaining.Set(float64(q.Remain))
}

// QuotaPaused implements worker.QuotaObserver.
func (m *Metrics) QuotaPaused(resume time.Time) {
	if resume.IsZero() {
		m.quota.resume.Set(0)
		return
	}
	m.quota.resume.Set(float64(resume.Unix()))
}

// RateLimited implements worker.QuotaObserver.
func (m *Metrics) RateLimited(waited time.Duration, share float64) {
	if waited > 0 {
		m.quota.rateWait.Add(waited.Seconds())
	}
	m.quota.rateShare.Set(share)
}
