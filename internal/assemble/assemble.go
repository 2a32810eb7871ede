package assemble

import (
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// Settings is everything a worker is built from.
type Settings struct {
	// Tokens chooses and configures the token source (default: the stable
	// one). Its APIBase and HTTPClient default to Client's.
	Tokens pathupdate.TokenSourceConfig
	// Client configures the WeChat client. Its Tokens is the source built
	// from Tokens unless given here.
	Client pathupdate.ClientConfig
	// UserAgent, when set, is the User-Agent of every request to WeChat
	// (token fetches included), so a gateway's log or the sandbox's record
	// tells which worker called.
	UserAgent string
	// Deliverer, when set, delivers instead of a client built from Tokens
	// and Client, which are then neither built nor validated: the
	// benchmarks' in-process API, or a client wrapped to measure it.
	Deliverer worker.Deliverer
	// Worker configures the worker: consumer, limits, Retry, Breaker,
	// Observer.
	Worker worker.Config
	// DeadLetters configures the dead-letter writer.
	DeadLetters deadletter.WriterConfig
	// Logger is the log of every part: it replaces the Logger of Worker,
	// Client, Tokens and DeadLetters, so one setting decides where all of
	// it goes. Default: the zero Logger, which drops everything.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of s with every unset field at its default.
func (s Settings) WithDefaults() Settings {
	s.Worker.Logger, s.DeadLetters.Logger = s.Logger, s.Logger
	s.Worker = s.Worker.WithDefaults()
	s.DeadLetters = s.DeadLetters.WithDefaults()
	if s.Deliverer != nil {
		return s
	}
	s.Client.Logger, s.Tokens.Logger = s.Logger, s.Logger
	if s.Client.HTTPClient == nil {
		// A connection kept for every call the worker makes at once.
		s.Client.HTTPClient = pathupdate.NewHTTPClientFor(pathupdate.DefaultHTTPTimeout, s.Worker.Concurrency)
	}
	if s.Tokens.HTTPClient == nil {
		s.Tokens.HTTPClient = s.Client.HTTPClient
	}
	if s.Tokens.APIBase == "" {
		s.Tokens.APIBase = s.Client.APIBase
	}
	if s.Client.APIBase == "" {
		s.Client.APIBase = s.Tokens.APIBase
	}
	s.Tokens = s.Tokens.WithDefaults()
	s.Client = s.Client.WithDefaults()
	return s
}

// Validate reports every setting (after WithDefaults) that cannot work, as
// pathupdate.FieldErrors named by the path from Settings:
// "Tokens.AppSecret", "Client.Transport", "Worker.Breaker.OpenMax". It
// covers everything Worker uses, so Worker never fails on settings
// Validate accepted.
func (s Settings) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "assemble: Settings."}
	if s.Deliverer == nil {
		errs.Nest("Tokens", s.Tokens.Validate())
		// The client is checked with a stand-in for the token source
		// Tokens makes; an API base that is Tokens' too was checked there
		// and is reported once.
		c := s.Client
		none := s.Tokens.Kind == pathupdate.TokenSourceNone
		if c.Tokens == nil {
			c.Tokens = pathupdate.NewStaticTokenSource("")
			if none {
				c.Tokens = pathupdate.NewNoTokenSource()
			}
		}
		if c.APIBase == s.Tokens.APIBase && !none { // none checks no API base of its own
			c.APIBase = pathupdate.DefaultAPIBase
		}
		errs.Nest("Client", c.Validate())
		if none && s.Worker.RateLimitAuto {
			// Named as RateLimit: one setting (--rate-limit auto) sets RateLimitAuto.
			errs.Add("Worker.RateLimit", "auto follows getApiQuota's rate_limit, which needs an access_token: with no token source (Cloud Hosting's open-interface service) give calls per second, or 0")
		}
	}
	errs.Nest("Worker", s.Worker.Validate())
	return errs.Err()
}

// Client builds the WeChat client of s (defaults filled in): its token
// source and HTTP client with the User-Agent.
func Client(s Settings) (*pathupdate.Client, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return client(s)
}

func client(s Settings) (*pathupdate.Client, error) {
	if s.UserAgent != "" {
		// The client sets it itself: a RoundTripper must clone a request
		// to change it, which would cost every call two copies.
		s.Client.UserAgent = s.UserAgent
		hc := *s.Tokens.HTTPClient
		hc.Transport = userAgentTransport{base: transportOf(&hc), agent: s.UserAgent}
		s.Tokens.HTTPClient = &hc
	}
	if s.Client.Tokens == nil {
		tokens, err := s.Tokens.New()
		if err != nil {
			return nil, err
		}
		s.Client.Tokens = tokens
	}
	return pathupdate.NewClient(s.Client)
}

// Worker builds the worker of s on js (a handle the caller owns): the
// client (unless s.Deliverer is given), the dead-letter writer and the
// worker itself, not started.
func Worker(js jetstream.JetStream, s Settings) (*worker.Worker, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	api := s.Deliverer
	if api == nil {
		c, err := client(s)
		if err != nil {
			return nil, err
		}
		api = c
	}
	return worker.New(js, api, deadletter.NewWriter(js, s.DeadLetters), s.Worker)
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// userAgentTransport names the worker in every request.
type userAgentTransport struct {
	base  http.RoundTripper
	agent string
}

func (t userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", t.agent)
	return t.base.RoundTrip(r)
}
