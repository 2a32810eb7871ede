package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	// AddrDefault is loopback only: the endpoints have no authentication.
	// Port 9464 is the one commonly used by Prometheus exporters.
	AddrDefault = "127.0.0.1:9464"
	// CheckTimeoutDefault bounds all readiness checks of one /readyz
	// request together; kubelet's default probe timeout is 1 s.
	CheckTimeoutDefault = 800 * time.Millisecond
)

// Paths served.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// Config sets up a Handler and a Server.
type Config struct {
	// Addr is where Server listens, host:port; port 0 picks a free one.
	// Default AddrDefault (loopback only). Handler ignores it.
	Addr string
	// Registry is what /metrics exposes. Required.
	Registry *prometheus.Registry
	// Checks are the readiness checks; more can be added with AddCheck.
	// With none, /readyz answers 200.
	Checks []Check
	// CheckTimeout bounds all checks of one /readyz request together; a
	// check still running then fails as timed out. Default
	// CheckTimeoutDefault.
	CheckTimeout time.Duration
	// Logger receives errors gathering metrics and serving. Default: the
	// zero Logger, which drops everything.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = CheckTimeoutDefault
	}
	return c
}

// Validate reports every setting that cannot work as a
// pathupdate.FieldError naming the field and the fix.
func (c Config) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "health: Config."}
	if c.Registry == nil {
		errs.Add("Registry", "nil: pass the registry the metrics are on")
	}
	if p := pathupdate.ListenAddrProblem(c.Addr); p != "" {
		errs.Add("Addr", "%s (default %s)", p, AddrDefault)
	}
	if c.CheckTimeout < 0 {
		errs.Add("CheckTimeout", "%s: use a positive duration or 0 for the default %s", c.CheckTimeout, CheckTimeoutDefault)
	}
	seen := map[string]bool{}
	for _, ch := range c.Checks {
		if err := checkCheck(ch, seen); err != nil {
			errs.Add("Checks", "%v", err)
		}
	}
	return errs.Err()
}

func checkCheck(c Check, seen map[string]bool) error {
	switch {
	case !validName(c.Name):
		return fmt.Errorf("check name %q: use lower case letters, digits and _", c.Name)
	case c.Run == nil:
		return fmt.Errorf("check %q has no Run func", c.Name)
	case seen[c.Name]:
		return fmt.Errorf("check %q is there twice", c.Name)
	}
	seen[c.Name] = true
	return nil
}

// Handler serves /metrics, /healthz and /readyz. It is safe for
// concurrent use.
type Handler struct {
	mux     *http.ServeMux
	timeout time.Duration

	mu     sync.Mutex
	checks []Check
}

// NewHandler builds a Handler from cfg (Addr is not used).
func NewHandler(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{mux: http.NewServeMux(), timeout: cfg.CheckTimeout, checks: slices.Clone(cfg.Checks)}
	metrics := promhttp.InstrumentMetricHandler(cfg.Registry, promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{cfg.Logger},
		// A collector that fails (consumer lag while NATS is down) costs
		// its own series, not the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      cfg.Registry,
		Timeout:       9 * time.Second, // under Prometheus' default scrape timeout
	}))
	h.mux.Handle("GET "+PathMetrics, metrics)
	h.mux.HandleFunc("GET "+PathHealthz, serveHealthz)
	// A platform that probes the port at its root (WeChat Cloud Hosting
	// documents a start-up probe of the container port, not its path)
	// gets the liveness answer rather than a 404 that restarts the worker.
	h.mux.HandleFunc("GET /{$}", serveHealthz)
	h.mux.HandleFunc("GET "+PathReadyz, h.serveReadyz)
	return h, nil
}

// AddCheck adds a readiness check, for checks whose subject exists only
// after the server started (the worker).
func (h *Handler) AddCheck(c Check) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range h.checks {
		seen[e.Name] = true
	}
	if err := checkCheck(c, seen); err != nil {
		return fmt.Errorf("health: AddCheck: %w", err)
	}
	h.checks = append(h.checks, c)
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// Report is the /readyz answer.
type Report struct {
	Status  string        `json:"status"`            // "ready" or "not_ready"
	Failing []string      `json:"failing,omitempty"` // names of the failing checks
	Checks  []CheckResult `json:"checks"`            // every check, in the order added
}

// CheckResult is one check's result.
type CheckResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"` // Check.Note's answer
}

// Ready runs every check at once, each bounded by ctx and CheckTimeout.
func (h *Handler) Ready(ctx context.Context) Report {
	h.mu.Lock()
	checks := slices.Clone(h.checks)
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	type done struct {
		i   int
		err error
	}
	// Buffered: a check that returns after we gave up does not block.
	ch := make(chan done, len(checks))
	for i, c := range checks {
		go func() { ch <- done{i, c.Run(ctx)} }()
	}
	errs := make([]error, len(checks))
	got := make([]bool, len(checks))
	for range checks {
		select {
		case d := <-ch:
			errs[d.i], got[d.i] = d.err, true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep := Report{Status: "ready", Checks: make([]CheckResult, len(checks))}
	for i, c := range checks {
		res := CheckResult{Name: c.Name, OK: got[i] && errs[i] == nil}
		switch {
		case !got[i]:
			res.Error = fmt.Sprintf("no answer within %s", h.timeout)
		case errs[i] != nil:
			res.Error = errs[i].Error()
		}
		if c.Note != nil {
			res.Note = c.Note()
		}
		if !res.OK {
			rep.Status = "not_ready"
			rep.Failing = append(rep.Failing, c.Name)
		}
		rep.Checks[i] = res
	}
	return rep
}

func (h *Handler) serveReadyz(w http.ResponseWriter, r *http.Request) {
	rep := h.Ready(r.Context())
	status := http.StatusOK
	if len(rep.Failing) > 0 {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}

// promLogger hands promhttp's error lines to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn().Msg(fmt.Sprint(v...)) }
