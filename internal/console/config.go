package console

import (
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// Defaults of Config.
const (
	// AddrDefault is loopback: a console without a token is only
	// allowed there.
	AddrDefault = "127.0.0.1:8090"
	// RefreshDefault is how often the dead-letter index and the rates
	// are brought up to date, and how often the overview reloads.
	RefreshDefault = 5 * time.Second
	// PageSizeDefault is how many dead letters a page lists.
	PageSizeDefault = 50
	// SessionMaxAge is how long a login lasts.
	SessionMaxAge = 12 * time.Hour
	// MinTokenLen is the shortest console token accepted: a token a
	// person can guess in a few tries protects nothing.
	MinTokenLen = 16
)

// Config configures a Console.
type Config struct {
	// Addr is host:port to listen on (port 0 picks a free one). Default
	// AddrDefault. Off loopback, Token is required.
	Addr string
	// Token is what an operator types on the login page. Empty: no login
	// (loopback only).
	Token pathupdate.Secret
	// ReadOnly shows everything and offers no action.
	ReadOnly bool
	// Consumer is the workers' consumer name prefix
	// (worker.ConsumerDefault unless changed).
	Consumer string
	// Refresh is how often the console reads what changed (dead letters,
	// workers' totals) and how often the overview reloads. Default
	// RefreshDefault.
	Refresh time.Duration
	// PageSize is how many dead letters a page lists. Default
	// PageSizeDefault.
	PageSize int
	// Logger gets the console's actions and failures (never a secret).
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.Consumer == "" {
		c.Consumer = worker.ConsumerDefault
	}
	if c.Refresh == 0 {
		c.Refresh = RefreshDefault
	}
	if c.PageSize == 0 {
		c.PageSize = PageSizeDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every field of c (after WithDefaults) that cannot work.
func (c Config) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "console: Config."}
	host, _, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil:
		errs.Add("Addr", "%q is not host:port: give e.g. %s, or :8090 for every interface (with a token)", c.Addr, AddrDefault)
	case c.Token == "" && !Loopback(host):
		errs.Add("Token", "is required when the console listens on %s, which is not loopback: set a token of at least %d characters, "+
			"or listen on %s", c.Addr, MinTokenLen, AddrDefault)
	}
	if c.Token != "" && len(c.Token.Reveal()) < MinTokenLen {
		errs.Add("Token", "is %d characters: use at least %d (e.g. `openssl rand -hex 16`)", len(c.Token.Reveal()), MinTokenLen)
	}
	if c.Refresh < 100*time.Millisecond {
		errs.Add("Refresh", "%s is too short: use at least 100ms (default %s)", c.Refresh, RefreshDefault)
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs.Add("PageSize", "%d: use 1 to 1000 (default %d)", c.PageSize, PageSizeDefault)
	}
	return errs.Err()
}

// Loopback reports whether host (an address's host part) only reaches
// this machine: a loopback IP or "localhost". An empty host is every
// interface, so it is not.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
