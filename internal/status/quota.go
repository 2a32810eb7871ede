package status

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// QuotaReport is WeChat's quota of logistics.updatePath as the watching
// worker last read it with getApiQuota.
type QuotaReport struct {
	worker.QuotaReading
	// Spent: nothing remains of the day's quota; delivery waits for
	// ResumesAt (WeChat's daily reset) or for quota to show again.
	Spent     bool      `json:"spent"`
	ResumesAt time.Time `json:"resumes_at,omitzero"`
}

// quotaReport reads the quota bucket; nil when no worker has published a
// reading yet.
func quotaReport(ctx context.Context, js jetstream.JetStream) (*QuotaReport, error) {
	r, err := worker.ReadQuota(ctx, js)
	if err != nil {
		return nil, fmt.Errorf("status: quota: %w", err)
	}
	if r == nil {
		return nil, nil
	}
	q := &QuotaReport{QuotaReading: *r, Spent: r.Spent()}
	if q.Spent {
		q.ResumesAt = pathupdate.NextQuotaReset(r.At).UTC()
	}
	return q, nil
}

// writeQuota prints the quota line of the report.
func writeQuota(out io.Writer, q *QuotaReport, now time.Time) {
	if q == nil {
		fmt.Fprintln(out, "WeChat quota: not known yet (no worker has asked getApiQuota)")
		return
	}
	limit := "no daily limit reported"
	if q.DailyLimit > 0 {
		limit = fmt.Sprintf("%d of %d used today, %d remaining", q.Used, q.DailyLimit, q.Remain)
	}
	if rl := q.RateLimit; rl != nil {
		limit += fmt.Sprintf("; rate limit %d calls per %d s", rl.CallCount, rl.RefreshSecond)
	}
	fmt.Fprintf(out, "WeChat quota: %s (asked %s ago)\n", limit, now.Sub(q.At).Round(time.Second))
	if q.Spent {
		fmt.Fprintf(out, "  spent: delivery paused until %s (WeChat's daily reset), or until quota shows again\n", q.ResumesAt.Format(time.RFC3339))
	}
}
