package health

import "context"

// CheckQuota is the name of the DailyQuota check.
const CheckQuota = "quota"

// DailyQuota passes while paused returns nil; pass the worker's
// QuotaPaused method. It fails while WeChat's daily quota is spent
// (45009), saying when delivery resumes.
func DailyQuota(paused func() error) Check {
	return Check{Name: CheckQuota, Run: func(context.Context) error { return paused() }}
}
