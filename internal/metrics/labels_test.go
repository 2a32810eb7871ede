package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

func TestErrcodeLabel(t *testing.T) {
	t.Parallel()
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: "http://x/y", Err: err} }
	tests := []struct {
		name string
		o    pathupdate.Outcome
		want string
	}{
		{"ok", pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: 200}, "0"},
		{"system error", pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: -1, HTTPStatus: 200}, "-1"},
		{"waybill not found", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: 40199, HTTPStatus: 200}, "40199"},
		{"incorrect token", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: 9300507, HTTPStatus: 200}, "9300507"},
		{"minute quota", pathupdate.Outcome{Kind: pathupdate.Throttled, ErrCode: 45011, HTTPStatus: 200}, "45011"},
		{"unknown errcode", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: 61234, HTTPStatus: 200}, ErrcodeOther},
		{"another unknown errcode", pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: -99, HTTPStatus: 200}, ErrcodeOther},
		{"503", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: 503}, ErrcodeHTTP5xx},
		{"500 with unreadable body", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: 500, Err: errors.New("unexpected EOF")}, ErrcodeHTTP5xx},
		{"404", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: 404}, ErrcodeHTTP4xx},
		{"302", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: 302}, ErrcodeHTTPOther},
		{"token fetch", pathupdate.Outcome{Kind: pathupdate.ConfigBroken, Err: &pathupdate.TokenError{Op: "stable_token", ErrCode: 40125}}, ErrcodeTokenFail},
		{"deadline", pathupdate.Outcome{Kind: pathupdate.Transient, Err: urlErr(context.DeadlineExceeded)}, ErrcodeTimeout},
		{"canceled", pathupdate.Outcome{Kind: pathupdate.Transient, Err: fmt.Errorf("%w: %w", context.Canceled, urlErr(context.Canceled))}, ErrcodeCanceled},
		{"refused", pathupdate.Outcome{Kind: pathupdate.Transient, Err: urlErr(&net.OpError{Op: "dial", Err: errors.New("connection refused")})}, ErrcodeTransport},
		{"not json", pathupdate.Outcome{Kind: pathupdate.Transient, HTTPStatus: 200, Err: errors.New("invalid character")}, ErrcodeBadAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ErrcodeLabel(tt.o); got != tt.want {
				t.Fatalf("ErrcodeLabel(%v) = %q, want %q", tt.o, got, tt.want)
			}
		})
	}
}

func TestErrcodeLabelBounded(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for code := -1000; code < 100_000; code++ {
		seen[ErrcodeLabel(pathupdate.Outcome{ErrCode: code, HTTPStatus: 200})] = true
	}
	for status := 100; status < 1000; status++ {
		seen[ErrcodeLabel(pathupdate.Outcome{HTTPStatus: status})] = true
	}
	// Every known code (9300507 was outside the loop), other, and the
	// three HTTP classes.
	if max := len(KnownErrcodes()) + 4; len(seen) > max {
		t.Fatalf("%d distinct errcode labels, want at most %d: %v", len(seen), max, seen)
	}
}

func TestReasonAndSourceLabels(t *testing.T) {
	t.Parallel()
	for _, r := range []string{deadletter.ReasonRejected, deadletter.ReasonInvalidEvent, deadletter.ReasonRetriesExhausted} {
		if got := reasonLabel(r); got != r {
			t.Errorf("reasonLabel(%q) = %q", r, got)
		}
	}
	if got := reasonLabel("WB123"); got != ReasonOther {
		t.Errorf("reasonLabel(unknown) = %q, want %q", got, ReasonOther)
	}
	for _, s := range []string{SourceStable, SourceClassic, SourceFile, SourceStatic} {
		if got := sourceLabel(s); got != s {
			t.Errorf("sourceLabel(%q) = %q", s, got)
		}
	}
	if got := sourceLabel("/etc/token"); got != SourceOther {
		t.Errorf("sourceLabel(path) = %q, want %q", got, SourceOther)
	}
}

func TestTokenResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, ResultOK},
		{&pathupdate.TokenError{Op: "stable_token", ErrCode: 40125}, "config_broken"},
		{fmt.Errorf("wrapped: %w", &pathupdate.TokenError{Op: "stable_token", ErrCode: 45011}), "throttled"},
		{&pathupdate.TokenError{Op: "stable_token", Err: errors.New("EOF")}, "transient"},
		{context.DeadlineExceeded, ResultError},
	}
	for _, tt := range tests {
		if got := tokenResult(tt.err); got != tt.want {
			t.Errorf("tokenResult(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestKindLabel(t *testing.T) {
	t.Parallel()
	if got := kindLabel(pathupdate.TokenInvalid); got != "token_invalid" {
		t.Errorf("kindLabel(TokenInvalid) = %q", got)
	}
	if got := kindLabel(pathupdate.Kind(42)); got != "unknown" {
		t.Errorf("kindLabel(42) = %q, want unknown", got)
	}
}

func TestBreakerValue(t *testing.T) {
	t.Parallel()
	got := []float64{breakerValue(retry.Closed), breakerValue(retry.HalfOpen), breakerValue(retry.Open)}
	if want := []float64{0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("closed, half_open, open = %v, want %v", got, want)
	}
}

func TestPartitionLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  jetstream.ConsumerConfig
		want string
	}{
		{"partition filter", jetstream.ConsumerConfig{FilterSubject: pathupdate.PartitionFilter(7)}, "7"},
		{"one filter in the list", jetstream.ConsumerConfig{FilterSubjects: []string{pathupdate.PartitionFilter(0)}}, "0"},
		{"no filter", jetstream.ConsumerConfig{}, "all"},
		{"other filter", jetstream.ConsumerConfig{FilterSubject: "x.logistics.trace.*"}, "c"},
		{"leading zero", jetstream.ConsumerConfig{FilterSubject: "07.logistics.trace.*"}, "c"},
		{"two filters", jetstream.ConsumerConfig{FilterSubjects: []string{pathupdate.PartitionFilter(0), pathupdate.PartitionFilter(1)}}, "c"},
	}
	for _, tt := range tests {
		if got := PartitionLabel("c", tt.cfg); got != tt.want {
			t.Errorf("%s: PartitionLabel = %q, want %q", tt.name, got, tt.want)
		}
	}
}
