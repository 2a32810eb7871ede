package worker

import (
	"strings"
	"testing"

	"golang.org/x/time/rate"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		want    float64
		auto    bool
		problem string // part of the error; "" for none
	}{
		{"0", 0, false, ""},
		{"50", 50, false, ""},
		{" 12.5 ", 12.5, false, ""},
		{"auto", 0, true, ""},
		{"AUTO", 0, true, ""},
		{"-1", 0, false, "use 0 (no limit) or a positive number"},
		{"fifty", 0, false, `"fifty" is neither a number`},
		{"", 0, false, "is neither a number"},
		{"NaN", 0, false, "use 0 (no limit)"},
		{"1e9", 0, false, "beyond any WeChat limit"},
		{"+Inf", 0, false, "beyond any WeChat limit"},
	} {
		got, auto, err := ParseRateLimit(tt.in)
		switch {
		case tt.problem == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
			t.Errorf("%q: error %v, want one saying %q", tt.in, err, tt.problem)
		case tt.problem == "" && (got != tt.want || auto != tt.auto):
			t.Errorf("%q: %v auto %v, want %v auto %v", tt.in, got, auto, tt.want, tt.auto)
		}
	}
}

// TestRateShare: the share is the total over the live members, none for a
// total of 0, and the limiter follows every change.
func TestRateShare(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name            string
		total           float64
		steps           [][2]float64 // set(total, members) in order; -1 keeps
		want, wantLimit float64
	}{
		{"no limit", 0, nil, 0, float64(rate.Inf)},
		{"alone", 50, nil, 50, 50},
		{"three members", 50, [][2]float64{{-1, 3}}, 50.0 / 3, 50.0 / 3},
		{"one leaves", 50, [][2]float64{{-1, 3}, {-1, 2}}, 25, 25},
		{"auto sets the total", 0, [][2]float64{{-1, 2}, {40, -1}}, 20, 20},
		{"auto finds none", 50, [][2]float64{{-1, 2}, {0, -1}}, 0, float64(rate.Inf)},
	} {
		r := newRateShare(tt.total)
		for _, s := range tt.steps {
			r.set(s[0], int(s[1]))
		}
		if got := r.share(); got != tt.want {
			t.Errorf("%s: share %v, want %v", tt.name, got, tt.want)
		}
		if got := float64(r.lim.Limit()); got != tt.wantLimit {
			t.Errorf("%s: limiter at %v, want %v", tt.name, got, tt.wantLimit)
		}
	}
}
