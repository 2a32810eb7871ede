package metrics

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/worker"
)

// Namespace prefixes every metric of this package.
const Namespace = "pathupdate"

// Defaults of Config.
const (
	// LagTimeoutDefault bounds one ConsumerLag call at scrape time: well
	// under Prometheus' default scrape timeout (10 s), so a slow NATS
	// costs the lag series, not the whole scrape.
	LagTimeoutDefault = 2 * time.Second
)

// APICallBuckets are the bucket bounds (seconds) of
// pathupdate_api_call_duration_seconds: a fast answer (tens of ms) up to a
// call that hit the client timeout (10 s default) twice (token refetch and
// retry).
func APICallBuckets() []float64 { return []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30} }

// DeliveryLatencyBuckets are the bucket bounds (seconds) of
// pathupdate_delivery_latency_seconds: sub-second up to a 6 h outage
// ridden out.
func DeliveryLatencyBuckets() []float64 {
	return []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}
}

// Config sets up Metrics.
type Config struct {
	// Registry receives every collector. Required: the package never
	// uses the global registry.
	Registry *prometheus.Registry
	// ConsumerLag, when set, is called at every scrape for
	// pathupdate_consumer_pending and pathupdate_consumer_ack_pending
	// (JetStreamLag is one). Default: those series are not exported.
	ConsumerLag LagFunc
	// LagTimeout bounds one ConsumerLag call. Default LagTimeoutDefault.
	LagTimeout time.Duration
	// NoRuntimeCollectors leaves out the Go runtime (go_*) and process
	// (process_*) collectors, for a registry that already has them.
	// Default false: they are registered.
	NoRuntimeCollectors bool
	// Logger receives a warning when ConsumerLag fails. Default: the zero
	// Logger, which drops everything.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.LagTimeout == 0 {
		c.LagTimeout = LagTimeoutDefault
	}
	return c
}

// Validate reports what Metrics cannot work without, as
// pathupdate.FieldErrors.
func (c Config) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "metrics: Config."}
	if c.Registry == nil {
		errs.Add("Registry", "nil: pass prometheus.NewRegistry() (the global registry is never used)")
	}
	if c.LagTimeout < 0 {
		errs.Add("LagTimeout", "%s: use a positive duration or 0 for the default %s", c.LagTimeout, LagTimeoutDefault)
	}
	return errs.Err()
}

// Metrics holds a worker's collectors. It implements worker.Observer; its
// methods are safe for concurrent use and never block.
type Metrics struct {
	events             *prometheus.CounterVec
	retries            *prometheus.CounterVec
	invalid            prometheus.Counter
	late               prometheus.Counter
	apiCalls           *prometheus.CounterVec
	apiDuration        prometheus.Histogram
	deliveryLatency    prometheus.Histogram
	breakerState       prometheus.Gauge
	breakerTransitions *prometheus.CounterVec
	tokenFetches       *prometheus.CounterVec
	historyRecords     *prometheus.CounterVec
	quota              quotaMetrics // quota.go

	load  atomic.Pointer[func() (held, lanes int)]
	pause atomic.Pointer[func() pause.Record]
}

var _ worker.Observer = (*Metrics)(nil)

// New registers the collectors on cfg.Registry. It fails if one of them is
// registered there already (New called twice on one registry).
func New(cfg Config) (*Metrics, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "events_total",
			Help: "Events settled by this worker: outcome delivered (reason empty) or dead_lettered with its reason.",
		}, []string{"outcome", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "retries_total",
			Help: "Transient failures of an event that will be called again after a backoff, by errcode.",
		}, []string{"errcode"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "invalid_events_total",
			Help: "Events that break the wire format, dead-lettered without an API call.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "late_events_total",
			Help: "Events settled after a later event of their waybill (lost in transit with a node, then redelivered): out of order rather than lost.",
		}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_calls_total",
			Help: "logistics.updatePath calls by outcome kind and errcode (http_5xx, timeout, ... when WeChat gave no answer).",
		}, []string{"kind", "errcode"}),
		apiDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "api_call_duration_seconds",
			Help:    "Duration of one logistics.updatePath call, access_token included.",
			Buckets: APICallBuckets(),
		}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "delivery_latency_seconds",
			Help:    "From JetStream storing an event to WeChat taking it, for delivered events.",
			Buckets: DeliveryLatencyBuckets(),
		}),
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "breaker_state",
			Help: "Circuit breaker of the WeChat API: 0 closed, 1 half_open, 2 open (delivery paused).",
		}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered.",
		}, []string{"to"}),
		tokenFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "token_fetches_total",
			Help: "access_token fetches by token source and result (ok, or the failure's kind).",
		}, []string{"source", "result"}),
		historyRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "history_records_total",
			Help: "Delivery history records by result: written, or dropped (buffer full, history stream unavailable or full; delivery went on).",
		}, []string{"result"}),
	}
	m.quota = newQuotaMetrics()
	// Series an alert or a rate() must see from the start, not from their
	// first increment: increase() misses the step from absent to 1.
	m.events.WithLabelValues("delivered", "")
	for _, r := range Reasons() {
		m.events.WithLabelValues("dead_lettered", r)
	}
	for _, s := range []retry.BreakerState{retry.Closed, retry.HalfOpen, retry.Open} {
		m.breakerTransitions.WithLabelValues(s.String())
	}
	m.historyRecords.WithLabelValues("written")
	m.historyRecords.WithLabelValues("dropped")

	cs := []prometheus.Collector{
		m.events, m.retries, m.invalid, m.late, m.apiCalls, m.apiDuration, m.deliveryLatency,
		m.breakerState, m.breakerTransitions, m.tokenFetches, m.historyRecords,
		newLoadCollector(&m.load), newPauseCollector(&m.pause),
	}
	cs = append(cs, m.quota.collectors()...)
	if cfg.ConsumerLag != nil {
		cs = append(cs, newLagCollector(cfg.ConsumerLag, cfg.LagTimeout, cfg.Logger))
	}
	if !cfg.NoRuntimeCollectors {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register collectors: %w (one Metrics per registry)", err)
		}
	}
	return m, nil
}

// APICall implements worker.Observer.
func (m *Metrics) APICall(o pathupdate.Outcome, took time.Duration) {
	m.apiCalls.WithLabelValues(kindLabel(o.Kind), ErrcodeLabel(o)).Inc()
	m.apiDuration.Observe(max(took, 0).Seconds())
}

// Retried implements worker.Observer.
func (m *Metrics) Retried(o pathupdate.Outcome) {
	m.retries.WithLabelValues(ErrcodeLabel(o)).Inc()
}

// Settled implements worker.Observer. Delivered events also feed the
// latency histogram when JetStream's timestamp is known.
func (m *Metrics) Settled(s worker.Settlement) {
	if s.Late {
		m.late.Inc()
	}
	if s.Delivered {
		m.events.WithLabelValues("delivered", "").Inc()
		if !s.Published.IsZero() && !s.At.IsZero() {
			// Clamped: the two clocks (server, worker) may disagree a little.
			m.deliveryLatency.Observe(max(s.At.Sub(s.Published), 0).Seconds())
		}
		return
	}
	m.events.WithLabelValues("dead_lettered", reasonLabel(s.Reason)).Inc()
	if s.Reason == deadletter.ReasonInvalidEvent {
		m.invalid.Inc()
	}
}

// BreakerChanged implements worker.Observer.
func (m *Metrics) BreakerChanged(_, to retry.BreakerState) {
	m.breakerState.Set(breakerValue(to))
	m.breakerTransitions.WithLabelValues(breakerName(to)).Inc()
}

func breakerName(s retry.BreakerState) string {
	switch s {
	case retry.Closed, retry.HalfOpen, retry.Open:
		return s.String()
	}
	return "unknown"
}

// TokenFetched counts one access_token fetch from source (SourceStable,
// SourceClassic, SourceFile, SourceStatic; anything else counts as
// SourceOther) that ended with err. Its signature fits a hook like
// pathupdate.TokenConfig.OnFetch func(source string, err error).
func (m *Metrics) TokenFetched(source string, err error) {
	m.tokenFetches.WithLabelValues(sourceLabel(source), tokenResult(err)).Inc()
}

// HistoryWritten and HistoryDropped count delivery history records;
// pass them as history.WriterConfig's OnWritten and OnDropped.
func (m *Metrics) HistoryWritten(n int) { m.historyRecords.WithLabelValues("written").Add(float64(n)) }
func (m *Metrics) HistoryDropped(n int) { m.historyRecords.WithLabelValues("dropped").Add(float64(n)) }

// SetLoad sets the function read at every scrape for
// pathupdate_held_messages and pathupdate_lanes; until it is set those
// series are absent. It exists because a worker needs its Observer before
// it exists: create Metrics, then the worker, then
//
//	m.SetLoad(func() (int, int) { s := w.Stats(); return s.Held, s.Lanes })
//
// f must be quick and safe for concurrent use. A nil f removes the series.
func (m *Metrics) SetLoad(f func() (held, lanes int)) {
	if f == nil {
		m.load.Store(nil)
		return
	}
	m.load.Store(&f)
}

// loadCollector exports held messages and lanes from one call of the load
// function per scrape.
type loadCollector struct {
	load        *atomic.Pointer[func() (held, lanes int)]
	held, lanes *prometheus.Desc
}

func newLoadCollector(load *atomic.Pointer[func() (held, lanes int)]) *loadCollector {
	return &loadCollector{
		load: load,
		held: prometheus.NewDesc(Namespace+"_held_messages",
			"Messages this worker holds now: queued in lanes, waiting for a retry or being delivered.", nil, nil),
		lanes: prometheus.NewDesc(Namespace+"_lanes",
			"Waybills with held messages now (one lane each).", nil, nil),
	}
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.held
	ch <- c.lanes
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.load.Load()
	if f == nil {
		return
	}
	held, lanes := (*f)()
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(c.lanes, prometheus.GaugeValue, float64(lanes))
}

// SetPause sets the function read at every scrape for pathupdate_paused
// and pathupdate_paused_until_seconds; until it is set both read 0. Pass
// the worker's OperatorPause method. f must be quick and safe for
// concurrent use. A nil f sets both back to 0.
func (m *Metrics) SetPause(f func() pause.Record) {
	if f == nil {
		m.pause.Store(nil)
		return
	}
	m.pause.Store(&f)
}

// pauseCollector exports the operator's pause, evaluated at scrape time so
// a pause with an end time drops to 0 by itself then.
type pauseCollector struct {
	pause         *atomic.Pointer[func() pause.Record]
	paused, until *prometheus.Desc
}

func newPauseCollector(p *atomic.Pointer[func() pause.Record]) *pauseCollector {
	return &pauseCollector{
		pause: p,
		paused: prometheus.NewDesc(Namespace+"_paused",
			"1 while an operator has paused delivery (`pathupdate pause`), else 0.", nil, nil),
		until: prometheus.NewDesc(Namespace+"_paused_until_seconds",
			"When the operator's pause ends by itself, Unix seconds; +Inf for a pause until resumed; 0 when not paused.", nil, nil),
	}
}

func (c *pauseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.paused
	ch <- c.until
}

func (c *pauseCollector) Collect(ch chan<- prometheus.Metric) {
	var r pause.Record
	if f := c.pause.Load(); f != nil {
		r = (*f)()
	}
	paused, until := 0.0, 0.0
	if r.Active(time.Now()) {
		paused, until = 1, math.Inf(1)
		if !r.Until.IsZero() {
			until = float64(r.Until.UnixMilli()) / 1000
		}
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused)
	ch <- prometheus.MustNewConstMetric(c.until, prometheus.GaugeValue, until)
}
