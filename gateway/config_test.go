package gateway_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/gateway"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  gateway.Config
		want string // "" = valid
	}{
		{"defaults with a token", gateway.Config{Token: testToken}, ""},
		{"no token", gateway.Config{}, "Config.Token: empty"},
		{"no token, no auth allowed", gateway.Config{AllowNoAuth: true}, ""},
		{"short token", gateway.Config{Token: "short-secret"}, "at least 16"},
		{"token with a blank", gateway.Config{Token: "abcdefgh ijklmnopq"}, "printable ASCII"},
		{"token with a line break", gateway.Config{Token: "abcdefghijklmnopq\n"}, "printable ASCII"},
		{"bad addr", gateway.Config{Token: testToken, Addr: "8088"}, "Config.Addr"},
		{"negative body limit", gateway.Config{Token: testToken, MaxBodyBytes: -1}, "Config.MaxBodyBytes"},
		{"huge body limit", gateway.Config{Token: testToken, MaxBodyBytes: 1 << 40}, "Config.MaxBodyBytes"},
		{"negative max events", gateway.Config{Token: testToken, MaxEvents: -1}, "Config.MaxEvents"},
		{"huge concurrency", gateway.Config{Token: testToken, Concurrency: 5000}, "Config.Concurrency"},
		{"sub-second Retry-After", gateway.Config{Token: testToken, RetryAfter: 500 * time.Millisecond}, "Config.RetryAfter"},
		{"negative read timeout", gateway.Config{Token: testToken, ReadTimeout: -time.Second}, "Config.ReadTimeout"},
	}
	for _, c := range cases {
		err := c.cfg.WithDefaults().Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		case err != nil && strings.Contains(err.Error(), string(c.cfg.Token.Reveal())) && c.cfg.Token != "":
			t.Errorf("%s: the error shows the token: %v", c.name, err)
		}
	}
	if err := (gateway.Config{}).WithDefaults().Validate(); !errors.Is(err, gateway.ErrNoToken) {
		t.Errorf("no token: %v does not match ErrNoToken", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := gateway.Config{}.WithDefaults()
	if c.Addr != "127.0.0.1:8088" || c.MaxBodyBytes != 1<<20 || c.MaxEvents != 1000 || c.RetryAfter != 5*time.Second ||
		c.Concurrency != gateway.ConcurrencyDefault || c.ReadTimeout != gateway.ReadTimeoutDefault || c.Connected == nil || !c.Connected() {
		t.Fatalf("defaults: %+v", c)
	}
}
