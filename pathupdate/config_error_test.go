package pathupdate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestFieldErrors: every problem of a Validate is a FieldError that
// errors.As finds (one of several joined ones included), nested configs
// get dotted names, and the message names the package, field and fix.
func TestFieldErrors(t *testing.T) {
	t.Parallel()
	inner := pathupdate.FieldErrors{Prefix: "retry: Policy."}
	inner.Add("MaxAttempts", "%d: use at least 1", 0)
	outer := pathupdate.FieldErrors{Prefix: "worker: Config."}
	outer.Add("AckWait", "0s is too short")
	outer.Nest("Retry", inner.Err())
	outer.Nest("Breaker", errors.New("not a field error"))
	err := outer.Err()
	var got []string
	for _, fe := range pathupdate.FieldErrorsOf(err) {
		got = append(got, fe.Field)
	}
	if strings.Join(got, ",") != "AckWait,Retry.MaxAttempts" {
		t.Fatalf("fields %v", got)
	}
	for _, w := range []string{"worker: Config.AckWait: 0s is too short", "worker: Config.Retry.MaxAttempts: 0: use at least 1", "not a field error"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	var fe *pathupdate.FieldError
	if !errors.As(err, &fe) || fe.Field != "AckWait" {
		t.Fatalf("errors.As: %v", fe)
	}
	if (&pathupdate.FieldErrors{}).Err() != nil {
		t.Fatal("no problems, but an error")
	}
}

// TestTokenSourceConfig: the kinds of token source, what each needs, and
// the API base rules (credentials in the URL are refused, and not echoed).
func TestTokenSourceConfig(t *testing.T) {
	t.Parallel()
	creds := pathupdate.TokenConfig{AppID: "wx1", AppSecret: "s"}
	tests := []struct {
		name   string
		cfg    pathupdate.TokenSourceConfig
		fields string
	}{
		{"stable by default", pathupdate.TokenSourceConfig{TokenConfig: creds}, ""},
		{"classic", pathupdate.TokenSourceConfig{Kind: "classic", TokenConfig: creds}, ""},
		{"file", pathupdate.TokenSourceConfig{Kind: "file", File: "/run/token"}, ""},
		{"no credentials", pathupdate.TokenSourceConfig{}, "AppID,AppSecret"},
		{"appid alone", pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: "wx1"}}, "AppSecret"},
		{"file without a file", pathupdate.TokenSourceConfig{Kind: "file"}, "File"},
		{"unknown kind", pathupdate.TokenSourceConfig{Kind: "magic", TokenConfig: creds}, "Kind"},
		{"user in the API base", pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{APIBase: "https://u:pw-123@api.example", AppID: "wx1", AppSecret: "s"}}, "APIBase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.WithDefaults().Validate()
			var got []string
			for _, fe := range pathupdate.FieldErrorsOf(err) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != tt.fields {
				t.Fatalf("Validate() = %v: fields %v, want %q", err, got, tt.fields)
			}
			if err != nil && strings.Contains(err.Error(), "pw-123") {
				t.Fatalf("the password is in the message: %v", err)
			}
			src, nerr := tt.cfg.New()
			if (nerr == nil) != (tt.fields == "") || (nerr == nil && src == nil) {
				t.Fatalf("New() = %v, %v", src, nerr)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "stable", "stable": "stable", "classic": "classic", "file": "file"} {
		if got, err := pathupdate.ParseTokenSource(in); got != want || err != nil {
			t.Errorf("ParseTokenSource(%q) = %q, %v", in, got, err)
		}
	}
	for in, want := range map[string]string{"": "https", "https": "https", "cloudcall": "cloudcall"} {
		if got, err := pathupdate.ParseTransport(in); got != want || err != nil {
			t.Errorf("ParseTransport(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := pathupdate.ParseTokenSource("Stable"); err == nil || !strings.Contains(err.Error(), "stable") {
		t.Errorf("ParseTokenSource(Stable): %v", err)
	}
	if _, err := pathupdate.ParseTransport("grpc"); err == nil || !strings.Contains(err.Error(), "cloudcall") {
		t.Errorf("ParseTransport(grpc): %v", err)
	}
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, ":8080": true, "8088": false, "h:99999": false, "h:x": false, "": false} {
		if got := pathupdate.ListenAddrProblem(addr) == ""; got != ok {
			t.Errorf("ListenAddrProblem(%q) ok = %v", addr, got)
		}
	}
}
