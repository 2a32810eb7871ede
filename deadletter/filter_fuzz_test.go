package deadletter

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseFilterValues feeds arbitrary text to the parsers of the
// --since, --errcode and --reason filters. They must never panic; every
// error matches ErrBadFilterValue; a duration back from now never gives a
// time after now; an errcode reads back from its own text; a reason is
// one this version writes. Seeds: testdata/fuzz/FuzzParseFilterValues.
func FuzzParseFilterValues(f *testing.F) {
	for _, s := range []string{"90m", "3d", "2026-01-02T15:04:05+08:00", "-1", "9300507", "rejected", " invalid_event ", "-5d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		since, err := ParseSince(s, now)
		switch {
		case err != nil && !errors.Is(err, ErrBadFilterValue):
			t.Fatalf("ParseSince(%q): %v does not match ErrBadFilterValue", s, err)
		case err == nil && since.Location() != time.UTC:
			t.Fatalf("ParseSince(%q) = %v, not in UTC", s, since)
		case err == nil && since.After(now):
			if _, rfc := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); rfc != nil {
				t.Fatalf("ParseSince(%q) = %v, after now %v", s, since, now)
			}
		}

		n, err := ParseErrCode(s)
		if err != nil && !errors.Is(err, ErrBadFilterValue) {
			t.Fatalf("ParseErrCode(%q): %v does not match ErrBadFilterValue", s, err)
		}
		if err == nil {
			if again, err := ParseErrCode(strconv.Itoa(n)); err != nil || again != n {
				t.Fatalf("ParseErrCode(%q) = %d, which reads back as %d, %v", s, n, again, err)
			}
		}

		r, err := ParseReason(s)
		switch {
		case err != nil && !errors.Is(err, ErrBadFilterValue):
			t.Fatalf("ParseReason(%q): %v does not match ErrBadFilterValue", s, err)
		case err == nil && r != ReasonRejected && r != ReasonInvalidEvent && r != ReasonRetriesExhausted:
			t.Fatalf("ParseReason(%q) = %q", s, r)
		}
	})
}
