package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Faults are the failures injected into logistics.updatePath calls by
// either transport, checked in this order once the access_token has been
// accepted: outage, HTTP 5xx, latency, (cloud call only: invoke error),
// daily quota, second quota, minute quota, system error. The token endpoints never get faults.
//
// Through the cloud call, outage and 5xx are HTTP statuses of the invoke
// API, the invoke error is the invoke API's errcode, and the minute quota
// and system error are what logistics.updatePath answered the function, so
// they arrive as the function's errCode (45011, -1) in resp_data.
type Faults struct {
	// SystemErrorRate is the fraction of calls answered {"errcode":-1}
	// (through the cloud call: the function's errCode -1).
	SystemErrorRate float64 `json:"system_error_rate"`
	// HTTP5xxRate is the fraction answered HTTP 500, 502, 503 or 504
	// (chosen at random) with a plain-text body, as a gateway would.
	HTTP5xxRate float64 `json:"http_5xx_rate"`
	// Latency is added before answering every call. A client that gives
	// up meanwhile gets nothing and the call is recorded with
	// HTTPStatus StatusClientClosed.
	Latency Duration `json:"latency"`
	// OutageUntil: until then every call gets HTTP 503 with a plain-text
	// body. Zero means no outage.
	OutageUntil time.Time `json:"outage_until,omitzero"`
	// MinuteQuota is how many calls are let through per wall-clock minute
	// (of Config.Now); the calls beyond get errcode 45011. 0 = unlimited.
	MinuteQuota int `json:"minute_quota"`
	// DailyQuota is how many calls the day's quota allows; the calls
	// beyond get errcode 45009 until the day changes (see quota.go).
	// 0 = unlimited.
	DailyQuota int `json:"daily_quota"`
	// SecondQuota is how many calls are let through per wall-clock second;
	// the calls beyond get errcode 45011. 0 = unlimited.
	SecondQuota int `json:"second_quota"`
	// InvokeErrorRate is the fraction of /tcb/invokecloudfunction calls
	// the invoke API itself answers InvokeErrcode, the function not run.
	// path/update calls never get it.
	InvokeErrorRate float64 `json:"invoke_error_rate"`
	// SystemErrorWaybills are waybills whose every call is answered
	// {"errcode":-1} while other waybills go through: an event that fails
	// on its own, which a worker retries up to its budget and then
	// dead-letters as retries_exhausted.
	SystemErrorWaybills []string `json:"system_error_waybills,omitempty"`
	// InvokeErrcode is the errcode of InvokeErrorRate: -1 (system error)
	// when 0; -1000 is the invoke API's other system error (a function
	// that failed or timed out).
	InvokeErrcode int `json:"invoke_errcode"`
}

// Validate reports the first field of f out of range.
func (f Faults) Validate() error {
	switch {
	case !(f.SystemErrorRate >= 0 && f.SystemErrorRate <= 1): // also catches NaN
		return fmt.Errorf("system_error_rate %v: want a fraction in [0, 1]", f.SystemErrorRate)
	case !(f.HTTP5xxRate >= 0 && f.HTTP5xxRate <= 1):
		return fmt.Errorf("http_5xx_rate %v: want a fraction in [0, 1]", f.HTTP5xxRate)
	case f.Latency < 0:
		return fmt.Errorf("latency %v: want 0 or more", time.Duration(f.Latency))
	case f.MinuteQuota < 0:
		return fmt.Errorf("minute_quota %d: want 0 (unlimited) or more", f.MinuteQuota)
	case f.DailyQuota < 0:
		return fmt.Errorf("daily_quota %d: want 0 (unlimited) or more", f.DailyQuota)
	case f.SecondQuota < 0:
		return fmt.Errorf("second_quota %d: want 0 (unlimited) or more", f.SecondQuota)
	case !(f.InvokeErrorRate >= 0 && f.InvokeErrorRate <= 1):
		return fmt.Errorf("invoke_error_rate %v: want a fraction in [0, 1]", f.InvokeErrorRate)
	}
	return nil
}

// clamped returns f with every field forced into its range.
func (f Faults) clamped() Faults {
	clamp := func(x float64) float64 {
		if !(x >= 0) { // NaN too
			return 0
		}
		return min(x, 1)
	}
	f.SystemErrorRate = clamp(f.SystemErrorRate)
	f.HTTP5xxRate = clamp(f.HTTP5xxRate)
	f.InvokeErrorRate = clamp(f.InvokeErrorRate)
	f.Latency = max(f.Latency, 0)
	f.MinuteQuota = max(f.MinuteQuota, 0)
	f.DailyQuota, f.SecondQuota = max(f.DailyQuota, 0), max(f.SecondQuota, 0)
	return f
}

// SetFaults replaces the injected faults from the next call on. Values out
// of range are clamped (a rate to [0, 1], a negative latency or quota to
// 0); PUT /sandbox/faults rejects them instead.
func (s *Sandbox) SetFaults(f Faults) {
	f = f.clamped()
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.log.Info().Interface("faults", f).Msg("sandbox: faults set")
}

// Faults returns the faults injected now.
func (s *Sandbox) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// StatusClientClosed is the HTTPStatus recorded for a call whose client
// gave up before the sandbox answered (nginx's convention); no answer was
// written.
const StatusClientClosed = 499

// gatewayStatuses are the 5xx answers HTTP5xxRate picks from.
var gatewayStatuses = [...]int{
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// minuteQuota counts the calls of one wall-clock minute.
type minuteQuota struct {
	minute time.Time
	used   int
}

// faultBefore decides the faults that come before latency: an HTTP status
// other than 200, or 0 to go on. It also returns the latency to add.
func (s *Sandbox) faultBefore(now time.Time) (status int, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if !f.OutageUntil.IsZero() && now.Before(f.OutageUntil) {
		return http.StatusServiceUnavailable, 0
	}
	if f.HTTP5xxRate > 0 && s.dice.Float64() < f.HTTP5xxRate {
		return gatewayStatuses[s.dice.IntN(len(gatewayStatuses))], 0
	}
	return 0, time.Duration(f.Latency)
}

// faultAfter decides the faults that come after latency: an errcode, or
// ErrcodeOK to go on to the body.
func (s *Sandbox) faultAfter(now time.Time, waybillID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if slices.Contains(f.SystemErrorWaybills, waybillID) {
		return ErrcodeSystemError
	}
	if code := s.limitsLocked(now, f); code != ErrcodeOK {
		return code
	}
	if f.MinuteQuota > 0 {
		m := now.Truncate(time.Minute)
		if !m.Equal(s.quota.minute) {
			s.quota = minuteQuota{minute: m}
		}
		s.quota.used++
		if s.quota.used > f.MinuteQuota {
			return ErrcodeMinuteQuota
		}
	}
	if f.SystemErrorRate > 0 && s.dice.Float64() < f.SystemErrorRate {
		return ErrcodeSystemError
	}
	return ErrcodeOK
}

// invokeFault decides the invoke API's own fault of a cloud call: an
// errcode, or ErrcodeOK to run the function.
func (s *Sandbox) invokeFault() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if f.InvokeErrorRate > 0 && s.dice.Float64() < f.InvokeErrorRate {
		if f.InvokeErrcode == 0 {
			return ErrcodeSystemError
		}
		return f.InvokeErrcode
	}
	return ErrcodeOK
}

// wait sleeps d, or less if ctx ends first; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Duration is a time.Duration that is JSON as a string like "20ms". When
// decoding, a JSON number is nanoseconds (what encoding/json makes of a
// time.Duration).
type Duration time.Duration

// MarshalJSON encodes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "20ms"-style strings and integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New(`duration: want a string like "20ms" or integer nanoseconds`)
	}
	*d = Duration(n)
	return nil
}

// String is the time.Duration form.
func (d Duration) String() string { return time.Duration(d).String() }
