package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Path is where the endpoint is served.
const Path = "/v1/events"

// Defaults and bounds of Config.
const (
	// AddrDefault is loopback: exposing the gateway is a decision to make
	// on purpose (with a TLS-terminating proxy in front).
	AddrDefault               = "127.0.0.1:8088"
	MaxBodyBytesDefault int64 = 1 << 20
	MaxEventsDefault          = 1000
	ConcurrencyDefault        = 16
	RetryAfterDefault         = 5 * time.Second
	ReadTimeoutDefault        = 30 * time.Second
	// MinTokenLen is the shortest bearer token accepted: a guessable token
	// on an endpoint that feeds WeChat is worse than none.
	MinTokenLen = 16
	// MaxBodyBytesLimit and MaxEventsLimit bound what one request may make
	// the process hold in memory.
	MaxBodyBytesLimit int64 = 64 << 20
	MaxEventsLimit          = 100_000
	MaxConcurrency          = 1024
)

// Config configures a Handler and a Server. WithDefaults fills the unset
// fields; Validate names the first wrong one.
type Config struct {
	// Addr is where a Server listens (host:port; port 0 picks a free one);
	// default AddrDefault (127.0.0.1:8088). A Handler ignores it.
	Addr string
	// Token is the bearer token every request must carry
	// (Authorization: Bearer <token>): at least MinTokenLen printable ASCII
	// characters without blanks. Required unless AllowNoAuth.
	Token pathupdate.Secret
	// AllowNoAuth lets an empty Token mean "no authentication", for a
	// gateway behind something that authenticates. Default false.
	AllowNoAuth bool
	// MaxBodyBytes bounds a request body; default MaxBodyBytesDefault
	// (1 MiB). A larger body is answered 413.
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request; default MaxEventsDefault
	// (1000). More is answered 413 and nothing is published.
	MaxEvents int
	// Concurrency bounds the publishes one request has in flight (events of
	// different waybills; one waybill's events go one after the other, in
	// request order); default ConcurrencyDefault (16).
	Concurrency int
	// RetryAfter is what a 503 answer's Retry-After header says, in whole
	// seconds (at least 1); default RetryAfterDefault (5s).
	RetryAfter time.Duration
	// ReadTimeout bounds reading one request, body included, in a Server;
	// default ReadTimeoutDefault (30s). There is no write timeout: an
	// answer waits for PubAcks, each bounded by the Publisher's AckTimeout.
	ReadTimeout time.Duration
	// Connected reports whether the NATS connection is up (pass
	// nc.IsConnected). While it says false the gateway publishes nothing
	// and answers 503. Default: always true, so only failed publishes
	// reveal an outage (after the Publisher's AckTimeout).
	Connected func() bool
	// Logger gets one line per request (never the token); default: none.
	Logger zerolog.Logger
	// TracerProvider, when set, gets a span per request, the parent of
	// its events' publish spans (the Publisher's own TracerProvider). A
	// request's traceparent header reaches the events' messages either
	// way. Default nil: no spans.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = MaxEventsDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = RetryAfterDefault
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = ReadTimeoutDefault
	}
	if c.Connected == nil {
		c.Connected = func() bool { return true }
	}
	return c
}

// ErrNoToken is matched by Validate's error when Token is empty and
// AllowNoAuth is false: the caller says which setting to set.
var ErrNoToken = errors.New("gateway: no bearer token")

// Validate reports every field of c (after WithDefaults) that is wrong, as
// pathupdate.FieldErrors; a missing token also matches ErrNoToken. Its
// messages never contain the token.
func (c Config) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "gateway: Config."}
	if p := pathupdate.ListenAddrProblem(c.Addr); p != "" {
		errs.Add("Addr", "%s (default %s)", p, AddrDefault)
	}
	if err := checkToken(c.Token, c.AllowNoAuth); err != nil {
		errs.AddError(err)
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > MaxBodyBytesLimit {
		errs.Add("MaxBodyBytes", "%d: use 1 to %d (default %d)", c.MaxBodyBytes, MaxBodyBytesLimit, MaxBodyBytesDefault)
	}
	if c.MaxEvents < 1 || c.MaxEvents > MaxEventsLimit {
		errs.Add("MaxEvents", "%d: use 1 to %d (default %d)", c.MaxEvents, MaxEventsLimit, MaxEventsDefault)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		errs.Add("Concurrency", "%d: use 1 to %d (default %d)", c.Concurrency, MaxConcurrency, ConcurrencyDefault)
	}
	if c.RetryAfter < time.Second {
		errs.Add("RetryAfter", "%s: use at least 1s (default %s)", c.RetryAfter, RetryAfterDefault)
	}
	if c.ReadTimeout <= 0 {
		errs.Add("ReadTimeout", "%s: use a positive duration (default %s)", c.ReadTimeout, ReadTimeoutDefault)
	}
	return errs.Err()
}

// checkToken returns the FieldError of a token that cannot be used, nil
// for a good one.
func checkToken(tok pathupdate.Secret, allowNoAuth bool) error {
	bad := func(format string, a ...any) error {
		return &pathupdate.FieldError{Field: "Token", Problem: fmt.Sprintf(format, a...)}
	}
	t := tok.Reveal()
	if t == "" {
		if allowNoAuth {
			return nil
		}
		return noToken{bad("empty: set a bearer token of at least %d characters (e.g. the output of `openssl rand -hex 32`)", MinTokenLen)}
	}
	if len(t) < MinTokenLen {
		return bad("%d characters long: use at least %d (e.g. the output of `openssl rand -hex 32`)", len(t), MinTokenLen)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return bad("a character at position %d is outside printable ASCII (no blanks, no line breaks): "+
				"an Authorization header cannot carry it", i+1)
		}
	}
	return nil
}

// noToken is the FieldError of a missing token that also matches
// ErrNoToken, without ErrNoToken's text in the message.
type noToken struct{ error }

func (e noToken) Unwrap() error        { return e.error }
func (e noToken) Is(target error) bool { return target == ErrNoToken }
