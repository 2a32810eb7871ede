package pathupdate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestAPIQuota: getApiQuota's answer from the sandbox, after some calls,
// and again once the access_token it used was revoked (refetched once).
func TestAPIQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{AcceptAnyWaybill: true, Faults: sandbox.Faults{DailyQuota: 10, SecondQuota: 500}})
	c := e.client(e.stable(), 5*time.Second)
	ctx := context.Background()
	for i := range 3 {
		if o := e.note(c.UpdatePath(ctx, pathupdate.Event{Token: "t", WaybillID: "Q1", ActionTime: 1_700_000_000 + int64(i),
			ActionType: pathupdate.ActionInTransit, ActionMsg: "m"})); o.Kind != pathupdate.Delivered {
			t.Fatalf("call %d: %v", i, o)
		}
	}
	want := pathupdate.Quota{DailyLimit: 10, Used: 3, Remain: 7, RateLimit: &pathupdate.RateLimit{CallCount: 500, RefreshSecond: 1}}
	for _, step := range []string{"first", "after the token was revoked"} {
		q, err := c.APIQuota(ctx)
		if e.noteErr(err) != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if q.DailyLimit != want.DailyLimit || q.Used != want.Used || q.Remain != want.Remain ||
			q.RateLimit == nil || *q.RateLimit != *want.RateLimit || q.ComponentRateLimit != nil || q.Spent() {
			t.Fatalf("%s: %+v (rate %+v), want %+v (rate %+v)", step, q, q.RateLimit, want, want.RateLimit)
		}
		if got := q.RateLimit.PerSecond(); got != 500 {
			t.Fatalf("PerSecond %v, want 500", got)
		}
		e.srv.RevokeTokens()
	}
}

// TestAPIQuotaFailures: an errcode is a *QuotaError; what is not WeChat
// answering is an error too; neither carries the access_token.
func TestAPIQuotaFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		answer  string
		status  int
		errcode int // of the *QuotaError; 0: not one
	}{
		{"cgi_path not found", `{"errcode":76021,"errmsg":"cgi_path not found, please check"}`, 200, 76021},
		{"system error", `{"errcode":-1,"errmsg":"system error"}`, 200, -1},
		{"no quota", `{"errcode":0,"errmsg":"ok"}`, 200, 0},
		{"not JSON", `<html>`, 200, 0},
		{"gateway", `bad gateway`, 502, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, sandbox.Config{})
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != pathupdate.QuotaPath {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.answer))
			}))
			t.Cleanup(api.Close)
			c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: api.URL, Tokens: e.stable(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.APIQuota(context.Background())
			var qe *pathupdate.QuotaError
			switch {
			case e.noteErr(err) == nil:
				t.Fatal("no error")
			case tt.errcode != 0 && (!errors.As(err, &qe) || qe.ErrCode != tt.errcode):
				t.Fatalf("error %v, want a QuotaError with errcode %d", err, tt.errcode)
			case tt.errcode == 0 && errors.As(err, &qe):
				t.Fatalf("error %v is a QuotaError", err)
			}
		})
	}
}

func TestNextQuotaReset(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	for _, tt := range []struct{ at, want time.Time }{
		{time.Date(2026, 11, 29, 19, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, cst)},                                         // 03:00 CST on the 30th
		{time.Date(2026, 11, 29, 15, 59, 59, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, cst)},                                      // 23:59:59 CST on the 29th
		{time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, cst)},                                         // 00:00 CST on the 30th: the next one
		{time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC), time.Date(2027, 1, 2, 0, 0, 0, 0, cst)},                                          // a new year in China
		{time.Date(2026, 11, 29, 12, 0, 0, 0, time.FixedZone("PST", -8*3600)), time.Date(2026, 11, 30, 0, 0, 0, 0, cst).AddDate(0, 0, 1)}, // 04:00 CST on the 30th
	} {
		if got := pathupdate.NextQuotaReset(tt.at); !got.Equal(tt.want) {
			t.Errorf("NextQuotaReset(%s) = %s, want %s", tt.at, got, tt.want)
		}
	}
}
