package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/sandbox"
)

// quotaAnswer is a getApiQuota answer.
type quotaAnswer struct {
	ErrCode int `json:"errcode"`
	sandbox.QuotaAnswer
}

func askQuota(t *testing.T, srv *sandbox.Server, at, cgiPath string) quotaAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"cgi_path": cgiPath})
	a := mustDo(t, srv, http.MethodPost, sandbox.QuotaPath+"?access_token="+url.QueryEscape(at), string(body))
	var q quotaAnswer
	if err := json.Unmarshal([]byte(a.Body), &q); err != nil {
		t.Fatalf("quota/get answer %q: %v", a.Body, err)
	}
	return q
}

// TestDailyQuota: calls beyond the daily quota get 45009, getApiQuota
// counts them, and each way of starting a new day lets calls through again.
func TestDailyQuota(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		newDay  func(t *testing.T, srv *sandbox.Server, clk *clock)
		sameDay func(clk *clock) // a clock move that must not start a new day
	}{
		{"POST /sandbox/next-day", func(t *testing.T, srv *sandbox.Server, _ *clock) {
			if st, body := admin(t, srv, "POST", "/sandbox/next-day", "", nil); st != 200 {
				t.Fatalf("next-day: %d %s", st, body)
			}
		}, nil},
		{"POST /sandbox/reset", func(t *testing.T, srv *sandbox.Server, _ *clock) {
			if st, body := admin(t, srv, "POST", "/sandbox/reset", "", nil); st != 200 {
				t.Fatalf("reset: %d %s", st, body)
			}
		}, nil},
		{"midnight China Standard Time", func(_ *testing.T, _ *sandbox.Server, clk *clock) {
			clk.Advance(6 * time.Hour) // 18:00:30 CST to 00:00:30 the next day
		}, func(clk *clock) { clk.Advance(5*time.Hour + 59*time.Minute) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			// Tokens outlive the day: only the quota may refuse a call.
			srv := start(t, sandbox.Config{Now: clk.Now, TokenTTL: 48 * time.Hour, AcceptAnyWaybill: true, Faults: sandbox.Faults{DailyQuota: 3}})
			at := token(t, srv)
			for i := range 3 {
				if a := update(t, srv, at, event("W", "t", i)); a.ErrCode != 0 {
					t.Fatalf("call %d: errcode %d, want 0", i, a.ErrCode)
				}
			}
			if a := update(t, srv, at, event("W", "t", 3)); a.ErrCode != sandbox.ErrcodeDailyQuota {
				t.Fatalf("call beyond the quota: errcode %d, want 45009", a.ErrCode)
			}
			q := askQuota(t, srv, at, sandbox.PathUpdatePath)
			if q.ErrCode != 0 || q.Quota.DailyLimit != 3 || q.Quota.Used != 3 || q.Quota.Remain != 0 || q.RateLimit != nil {
				t.Fatalf("quota/get when spent: %+v", q)
			}
			if tt.sameDay != nil {
				tt.sameDay(clk)
				if a := update(t, srv, at, event("W", "t", 4)); a.ErrCode != sandbox.ErrcodeDailyQuota {
					t.Fatalf("same day, later: errcode %d, want 45009", a.ErrCode)
				}
				clk.Advance(time.Minute)
			} else {
				tt.newDay(t, srv, clk)
			}
			if a := update(t, srv, at, event("W", "t", 5)); a.ErrCode != 0 {
				t.Fatalf("after the day change: errcode %d, want 0", a.ErrCode)
			}
			if q := askQuota(t, srv, at, sandbox.PathUpdatePath); q.Quota.Used != 1 || q.Quota.Remain != 2 {
				t.Fatalf("quota/get after the day change: %+v, want used 1, remain 2", q.Quota)
			}
		})
	}
}

// TestSecondQuota: the calls of one wall-clock second beyond SecondQuota
// get 45011, the next second lets calls through, and getApiQuota reports
// the limit as rate_limit.
func TestSecondQuota(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := start(t, sandbox.Config{Now: clk.Now, AcceptAnyWaybill: true, Faults: sandbox.Faults{SecondQuota: 2}})
	at := token(t, srv)
	var got []int
	for i := range 3 {
		got = append(got, update(t, srv, at, event("S", "t", i)).ErrCode)
	}
	clk.Advance(time.Second)
	got = append(got, update(t, srv, at, event("S", "t", 3)).ErrCode)
	if want := []int{0, 0, sandbox.ErrcodeMinuteQuota, 0}; len(got) != 4 || got[2] != want[2] || got[0]|got[1]|got[3] != 0 {
		t.Fatalf("errcodes %v, want %v", got, want)
	}
	q := askQuota(t, srv, at, sandbox.PathUpdatePath)
	if q.RateLimit == nil || q.RateLimit.CallCount != 2 || q.RateLimit.RefreshSecond != 1 {
		t.Fatalf("rate_limit %+v, want 2 calls per 1 s", q.RateLimit)
	}
	if q.Quota.DailyLimit != 0 || q.Quota.Used != 3 {
		t.Fatalf("quota %+v: want no daily limit and the 3 calls let through counted", q.Quota)
	}
}

// TestQuotaGetRefuses: getApiQuota's own errors.
func TestQuotaGetRefuses(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	at := token(t, srv)
	for _, tt := range []struct {
		name, at, path string
		want           int
	}{
		{"another API", at, "/cgi-bin/message/custom/send", sandbox.ErrcodeQuotaPathNotFound},
		{"no leading slash", at, "cgi-bin/express/delivery/path/update", sandbox.ErrcodeQuotaBadPath},
		{"with the host", at, "https://api.weixin.qq.com" + sandbox.PathUpdatePath, sandbox.ErrcodeQuotaBadPath},
		{"unknown access_token", "nope", sandbox.PathUpdatePath, sandbox.ErrcodeInvalidCredential},
	} {
		if q := askQuota(t, srv, tt.at, tt.path); q.ErrCode != tt.want {
			t.Errorf("%s: errcode %d, want %d", tt.name, q.ErrCode, tt.want)
		}
	}
	if n := srv.QuotaAsks(); n != 0 {
		t.Errorf("QuotaAsks %d after refusals only, want 0", n)
	}
}

// TestQuotaFaultsOverAdmin: PUT /sandbox/faults sets the daily and second
// quotas and refuses negative ones, naming the field.
func TestQuotaFaultsOverAdmin(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Config{})
	var f sandbox.Faults
	if st, body := admin(t, srv, "PUT", "/sandbox/faults", `{"daily_quota":7,"second_quota":3}`, &f); st != 200 || f.DailyQuota != 7 || f.SecondQuota != 3 {
		t.Fatalf("PUT quotas: %d %s", st, body)
	}
	for field, want := range map[string]string{"daily_quota": "daily_quota -1", "second_quota": "second_quota -1"} {
		if st, body := admin(t, srv, "PUT", "/sandbox/faults", `{"`+field+`":-1}`, nil); st != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("PUT %s -1: %d %s, want 400 naming it", field, st, body)
		}
	}
	if q := srv.QuotaNow(); q.Quota.DailyLimit != 7 || q.RateLimit == nil || q.RateLimit.CallCount != 3 {
		t.Fatalf("QuotaNow %+v after the refused PUTs, want the quotas set before", q)
	}
}
