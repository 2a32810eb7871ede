package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://h/p?access_token=AT123", "https://h/p?access_token=REDACTED"},
		{"https://h/p?a=1&access_token=AT123&b=2", "https://h/p?a=1&access_token=REDACTED&b=2"},
		{"https://h/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=SEC", "https://h/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=REDACTED"},
		{"https://h/p?ACCESS_TOKEN=AT123#frag", "https://h/p?ACCESS_TOKEN=REDACTED#frag"},
		{"https://h/p?access%5Ftoken=AT123", "https://h/p?access_token=REDACTED"},
		{"https://h/p?access_token=%zz-bad-escape", "https://h/p?access_token=REDACTED"},
		{"https://h/p", "https://h/p"},
		{"https://h/p?secretive=1", "https://h/p?secretive=1"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactURLError(t *testing.T) {
	t.Parallel()
	const tok, sec = "AT-very-secret-token", "APPSECRET-value"
	inner := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name   string
		err    error
		is     error
		secret string
	}{
		{"updatePath", &url.Error{Op: "Post", URL: "https://api/cgi-bin/express/delivery/path/update?access_token=" + tok, Err: context.Canceled}, context.Canceled, tok},
		{"classic token", &url.Error{Op: "Get", URL: "https://api/cgi-bin/token?grant_type=client_credential&appid=wx&secret=" + sec, Err: inner}, inner, sec},
		{"nested", fmt.Errorf("outer: %w", &url.Error{Op: "Post", URL: "https://api/p?access_token=" + tok, Err: context.DeadlineExceeded}), context.DeadlineExceeded, tok},
		{"url inside url", &url.Error{Op: "Post", URL: "https://api/p?access_token=" + tok, Err: &url.Error{Op: "parse", URL: "https://x?secret=" + sec, Err: errors.New("bad")}}, nil, sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redactURLError(tt.err)
			msg := got.Error()
			if strings.Contains(msg, tok) || strings.Contains(msg, sec) || strings.Contains(msg, tt.secret) {
				t.Fatalf("credential left in %q", msg)
			}
			if !strings.Contains(msg, "=REDACTED") {
				t.Fatalf("no REDACTED marker in %q", msg)
			}
			if tt.is != nil && !errors.Is(got, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false after redaction", got, tt.is)
			}
			var ue *url.Error
			if !errors.As(got, &ue) {
				t.Fatalf("*url.Error lost in %#v", got)
			}
			if strings.Contains(ue.URL, tok) || strings.Contains(ue.URL, sec) {
				t.Fatalf("the *url.Error in the chain still has the credential: %s", ue.URL)
			}
		})
	}
	if got := redactURLError(nil); got != nil {
		t.Errorf("redactURLError(nil) = %v", got)
	}
	plain := errors.New("no url here")
	if got := redactURLError(plain); got != plain {
		t.Errorf("non-url error changed: %v", got)
	}
	timeout := &url.Error{Op: "Post", URL: "https://a/?access_token=x", Err: &net.DNSError{IsTimeout: true}}
	if ue, ok := redactURLError(timeout).(*url.Error); !ok || !ue.Timeout() {
		t.Errorf("Timeout() lost")
	}
}

func TestScrubSecrets(t *testing.T) {
	t.Parallel()
	got := scrubSecrets("invalid appsecret SEC hint: [SEC]", Secret("SEC"), Secret(""))
	if strings.Contains(got, "SEC") {
		t.Fatalf("scrubSecrets left it: %q", got)
	}
}
