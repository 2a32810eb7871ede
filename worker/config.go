package worker

import (
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// Defaults of Config.
const (
	ConsumerDefault        = "pathupdate"
	MaxInFlightDefault     = 512
	ConcurrencyDefault     = 64
	AckWaitDefault         = 20 * time.Second
	PinnedTTLDefault       = 8 * time.Second
	MemberTTLDefault       = 6 * time.Second
	ShutdownTimeoutDefault = 10 * time.Second
)

// Config sets up a Worker. The zero value plus WithDefaults is usable.
type Config struct {
	// Consumer is the name prefix of the durable partition consumers
	// ("<Consumer>-p<N>") every worker of a deployment shares. Default
	// ConsumerDefault.
	Consumer string
	// MemberID is how this worker announces itself among the workers.
	// Default: host name, process id and a random suffix.
	MemberID string
	// MaxInFlight bounds the messages held at once per partition (the
	// partition consumer's MaxAckPending): events queued in lanes, waiting
	// for a retry or being delivered. With the partitions a worker holds it
	// bounds memory. Default MaxInFlightDefault.
	MaxInFlight int
	// Concurrency bounds the API calls in progress at once. Default
	// ConcurrencyDefault.
	Concurrency int
	// AckWait is how long JetStream waits for an ack before it redelivers;
	// held messages are kept alive every AckWait/3. Default AckWaitDefault.
	AckWait time.Duration
	// PinnedTTL is how long a partition stays pinned to a worker that
	// stopped pulling (killed) before another may take it. Default
	// PinnedTTLDefault.
	PinnedTTL time.Duration
	// MemberTTL is how long a worker counts as alive after its last
	// heartbeat (sent every MemberTTL/3). Default MemberTTLDefault.
	MemberTTL time.Duration
	// ShutdownTimeout is how long Stop lets API calls in progress finish
	// before it cancels them. Default ShutdownTimeoutDefault.
	ShutdownTimeout time.Duration
	// RateLimit is how many calls per second to logistics.updatePath the
	// whole deployment makes at most; each worker takes its share from
	// the live members (rate.go). 0, the default, is no limit.
	RateLimit float64
	// RateLimitAuto makes RateLimit follow the rate_limit getApiQuota
	// reports (none while it reports none). Default false.
	RateLimitAuto bool
	// QuotaInterval is how often the one worker that watches WeChat's
	// quota asks getApiQuota (quota.go). Default QuotaIntervalDefault.
	QuotaInterval time.Duration
	// Retry decides what to do with each outcome. Default retry.Policy{}.WithDefaults().
	Retry retry.Policy
	// Breaker pauses delivery as a whole when the API fails for everything.
	// Its Logger is replaced by Logger.
	Breaker retry.BreakerConfig
	// Observer is told about calls, retries, settlements and the breaker,
	// for metrics. Default NopObserver.
	Observer Observer
	// History, when set, gets a record of every delivery, dead letter and
	// retry (package history). Default none.
	History HistoryWriter
	// TracerProvider, when set, gets a span per settled event and per API
	// call, in the trace of the event's traceparent header (tracing.go);
	// dead letters keep that trace context. Default nil: no spans, no cost.
	TracerProvider trace.TracerProvider
	// Logger receives one line per delivery failure and lifecycle events.
	Logger zerolog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Consumer == "" {
		c.Consumer = ConsumerDefault
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = MaxInFlightDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.PinnedTTL == 0 {
		c.PinnedTTL = PinnedTTLDefault
	}
	if c.MemberTTL == 0 {
		c.MemberTTL = MemberTTLDefault
	}
	if c.MemberID == "" {
		c.MemberID = NewMemberID()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if c.QuotaInterval == 0 {
		c.QuotaInterval = QuotaIntervalDefault
	}
	c.Retry = c.Retry.WithDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Breaker.Now == nil {
		c.Breaker.Now = c.Now
	}
	c.Breaker = c.Breaker.WithDefaults()
	return c
}

// Validate reports every field that cannot work (after WithDefaults) as a
// pathupdate.FieldError; those of Retry and Breaker are named
// "Retry.<field>" and "Breaker.<field>". It covers every field New uses,
// so New never fails or panics on a config Validate accepted.
func (c Config) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "worker: Config."}
	// The consumer's name goes into JetStream subjects and the server's
	// file names: the server refuses . * > and blanks, and this package
	// appends -p<N>. Checked here so that a wrong one fails before Start.
	if !pathupdate.ValidName(c.Consumer) {
		errs.Add("Consumer", "%q: use 1 to 128 letters, digits, - and _ (default %q)", c.Consumer, ConsumerDefault)
	}
	if !pathupdate.ValidName(c.MemberID) {
		errs.Add("MemberID", "%q: use 1 to 128 letters, digits, - and _ (default: host name, process id and a random suffix)", c.MemberID)
	}
	if c.MaxInFlight < 1 {
		errs.Add("MaxInFlight", "%d: use at least 1 (default %d)", c.MaxInFlight, MaxInFlightDefault)
	}
	if c.Concurrency < 1 {
		errs.Add("Concurrency", "%d: use at least 1 (default %d)", c.Concurrency, ConcurrencyDefault)
	}
	for _, d := range []struct {
		field    string
		v, deflt time.Duration
	}{{"AckWait", c.AckWait, AckWaitDefault}, {"PinnedTTL", c.PinnedTTL, PinnedTTLDefault}, {"MemberTTL", c.MemberTTL, MemberTTLDefault}} {
		if d.v < time.Second {
			errs.Add(d.field, "%s is too short: use at least 1s (default %s)", d.v, d.deflt)
		}
	}
	if p := rateLimitProblem(c.RateLimit); p != "" {
		errs.Add("RateLimit", "%s (default 0)", p)
	}
	if c.QuotaInterval < time.Second {
		errs.Add("QuotaInterval", "%s is too short: use at least 1s (default %s)", c.QuotaInterval, QuotaIntervalDefault)
	}
	if c.ShutdownTimeout < 0 {
		errs.Add("ShutdownTimeout", "%s: must not be negative (default %s)", c.ShutdownTimeout, ShutdownTimeoutDefault)
	}
	errs.Nest("Retry", c.Retry.Validate())
	errs.Nest("Breaker", c.Breaker.Validate())
	return errs.Err()
}
