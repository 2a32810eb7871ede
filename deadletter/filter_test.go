package deadletter

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2h", now.Add(-2 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{" 1h30m ", now.Add(-90 * time.Minute)},
		{"3d", now.Add(-72 * time.Hour)},
		{"0s", now},
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2026-01-02T15:04:05+08:00", time.Date(2026, 1, 2, 7, 4, 5, 0, time.UTC)},
		{"2026-01-02T15:04:05.5Z", time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		got, err := ParseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseSince(%q) = %v, %v; want %v in UTC", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-2h", "2", "3.5d", "-1d", "2026-01-02", "2026-01-02 15:04:05"} {
		_, err := ParseSince(bad, now)
		if !errors.Is(err, ErrBadFilterValue) || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseSince(%q): err = %v, want ErrBadFilterValue saying what to give", bad, err)
		}
	}
}

func TestParseErrCodeAndReason(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"40199": 40199, "9300507": 9300507, "-1": -1, " 0 ": 0} {
		if got, err := ParseErrCode(in); err != nil || got != want {
			t.Errorf("ParseErrCode(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "forty", "1.5", "0x10", "99999999999999999999"} {
		if _, err := ParseErrCode(bad); !errors.Is(err, ErrBadFilterValue) || !strings.Contains(err.Error(), "whole number") {
			t.Errorf("ParseErrCode(%q): err = %v", bad, err)
		}
	}
	for _, ok := range []string{ReasonRejected, ReasonInvalidEvent, ReasonRetriesExhausted} {
		if got, err := ParseReason(ok); err != nil || got != ok {
			t.Errorf("ParseReason(%q) = %q, %v", ok, got, err)
		}
	}
	if _, err := ParseReason("rejceted"); !errors.Is(err, ErrBadFilterValue) || !strings.Contains(err.Error(), ReasonRetriesExhausted) {
		t.Errorf("ParseReason typo: err = %v", err)
	}
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Record{WaybillID: "W1", Reason: ReasonRejected, ErrCode: 40199, FailedAt: at, Seq: 10}
	invalid := Record{WaybillID: "", Reason: ReasonInvalidEvent, FailedAt: at, Seq: 11}
	tests := []struct {
		f       Filter
		r       Record
		matches bool
	}{
		{Filter{}, r, true},
		{Filter{Waybill: "W1"}, r, true},
		{Filter{Waybill: "W2"}, r, false},
		{Filter{ErrCode: new(40199)}, r, true},
		{Filter{ErrCode: new(0)}, r, false},
		{Filter{ErrCode: new(0)}, invalid, true},
		{Filter{Reason: ReasonRejected}, r, true},
		{Filter{Reason: ReasonInvalidEvent}, r, false},
		{Filter{Since: at}, r, true},
		{Filter{Since: at.Add(time.Nanosecond)}, r, false},
		{Filter{FromSeq: 10}, r, true},
		{Filter{FromSeq: 11}, r, false},
		{Filter{Waybill: InvalidWaybill}, invalid, true},
		{Filter{Waybill: InvalidWaybill}, r, false},
		{Filter{Waybill: "_invalid"}, Record{WaybillID: "_invalid"}, true},
		{Filter{Waybill: "_invalid"}, invalid, false},
		{Filter{Waybill: InvalidWaybill}, Record{WaybillID: "_invalid"}, false},
		{Filter{Waybill: "W1", ErrCode: new(40199), Reason: ReasonRejected, Since: at}, r, true},
		{Filter{Waybill: "W1", ErrCode: new(9300507)}, r, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.r); got != tt.matches {
			t.Errorf("%s matches %+v: %v, want %v", tt.f, tt.r, got, tt.matches)
		}
	}
}

func TestFilterValidateAndString(t *testing.T) {
	t.Parallel()
	for _, ok := range []Filter{{}, {Waybill: "SF-1_a"}, {Waybill: InvalidWaybill}, {Waybill: "_invalid"}, {Reason: "future_reason"}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []Filter{{Waybill: "W.1"}, {Waybill: "*"}, {Waybill: ">"}, {Waybill: "$JS"}, {Waybill: "~other"}, {Waybill: strings.Repeat("w", 65)}, {Reason: "a\nb"}} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "Filter.") {
			t.Errorf("%+v: err = %v, want one naming the field", bad, err)
		}
	}
	f := Filter{Waybill: "W1", ErrCode: new(9300507), Reason: ReasonRejected, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), FromSeq: 7}
	if got, want := f.String(), "waybill=W1 errcode=9300507 reason=rejected since=2026-01-02T03:04:05Z from-seq=7"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := (Filter{}).String(); got != "all dead letters" {
		t.Errorf("zero String = %q", got)
	}
}

func TestRecordJSON(t *testing.T) {
	t.Parallel()
	r := Record{Seq: 3, WaybillID: "W1", Reason: ReasonRejected, ErrCode: 40199, FailedAt: time.Unix(1, 0),
		Event: []byte(`{"token":"t","waybill_id":"W1","action_time":1,"action_type":100001,"action_msg":"x"}`)}
	j := r.JSON()
	if string(j.Event) != string(r.Event) || j.EventError != "" || j.FirstAttempt != nil || j.FailedAt.Location() != time.UTC {
		t.Errorf("valid event: %+v", j)
	}
	for _, tt := range []struct{ event, want string }{
		{"not json", `"not json"`},
		{"", `""`},
		{"\xff{}", `"\ufffd{}"`},
		{`[1,2]`, `[1,2]`},
	} {
		r.Event = []byte(tt.event)
		j := r.JSON()
		if string(j.Event) != tt.want || j.EventError == "" {
			t.Errorf("event %q: Event %s, EventError %q; want %s and an error", tt.event, j.Event, j.EventError, tt.want)
		}
	}
}
