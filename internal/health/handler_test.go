package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
)

// get does one request and returns status, body and content type.
func get(t *testing.T, method, url string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

// readyz fetches /readyz and decodes its report.
func readyz(t *testing.T, base string) (int, health.Report) {
	t.Helper()
	status, body, ctype := get(t, http.MethodGet, base+health.PathReadyz)
	if ctype != "application/json" {
		t.Fatalf("/readyz Content-Type %q, want application/json", ctype)
	}
	var rep health.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return status, rep
}

func newTestServer(t *testing.T, cfg health.Config) (*health.Handler, string) {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	h, err := health.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func pass(name string) health.Check {
	return health.Check{Name: name, Run: func(context.Context) error { return nil }}
}

func fail(name, msg string) health.Check {
	return health.Check{Name: name, Run: func(context.Context) error { return errors.New(msg) }}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	hang := health.Check{Name: "hang", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	tests := []struct {
		name       string
		checks     []health.Check
		wantStatus int
		wantFail   []string
	}{
		{"no checks", nil, 200, nil},
		{"all pass", []health.Check{pass("a"), pass("b")}, 200, nil},
		{"one fails", []health.Check{pass("a"), fail("b", "b is down")}, 503, []string{"b"}},
		{"two fail", []health.Check{fail("a", "a is down"), pass("b"), fail("c", "c is down")}, 503, []string{"a", "c"}},
		{"one hangs", []health.Check{pass("a"), hang}, 503, []string{"hang"}},
		{"nats connected", []health.Check{health.NATSConnected(func() nats.Status { return nats.CONNECTED })}, 200, nil},
		{"nats reconnecting", []health.Check{health.NATSConnected(func() nats.Status { return nats.RECONNECTING })}, 503, []string{health.CheckNATS}},
		{"consuming", []health.Check{health.Consuming(func() bool { return true })}, 200, nil},
		{"not consuming", []health.Check{health.Consuming(func() bool { return false })}, 503, []string{health.CheckConsuming}},
		{"breaker closed", []health.Check{health.BreakerClosed(func() retry.BreakerState { return retry.Closed })}, 200, nil},
		{"breaker open", []health.Check{health.BreakerClosed(func() retry.BreakerState { return retry.Open })}, 503, []string{health.CheckBreaker}},
		{"breaker half open", []health.Check{health.BreakerClosed(func() retry.BreakerState { return retry.HalfOpen })}, 503, []string{health.CheckBreaker}},
	}
	paused := func(r pause.Record) health.Check { return health.OperatorPause(func() pause.Record { return r }) }
	tests = append(tests, []struct {
		name       string
		checks     []health.Check
		wantStatus int
		wantFail   []string
	}{
		{"no operator pause", []health.Check{paused(pause.Record{})}, 200, nil},
		{"operator pause", []health.Check{paused(pause.Record{At: time.Now()})}, 200, nil},
		{"operator pause and breaker open", []health.Check{paused(pause.Record{At: time.Now()}),
			health.BreakerClosed(func() retry.BreakerState { return retry.Open })}, 503, []string{health.CheckBreaker}},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, url := newTestServer(t, health.Config{Checks: tt.checks, CheckTimeout: 100 * time.Millisecond})
			status, rep := readyz(t, url)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%+v)", status, tt.wantStatus, rep)
			}
			if !slices.Equal(rep.Failing, tt.wantFail) {
				t.Fatalf("failing %v, want %v", rep.Failing, tt.wantFail)
			}
			if len(rep.Checks) != len(tt.checks) {
				t.Fatalf("%d check results, want %d", len(rep.Checks), len(tt.checks))
			}
			wantWord := map[int]string{200: "ready", 503: "not_ready"}[tt.wantStatus]
			if rep.Status != wantWord {
				t.Fatalf("status word %q, want %q", rep.Status, wantWord)
			}
			for i, c := range rep.Checks {
				if c.Name != tt.checks[i].Name {
					t.Errorf("result %d is %q, want %q (order kept)", i, c.Name, tt.checks[i].Name)
				}
				if failed := slices.Contains(tt.wantFail, c.Name); failed == c.OK || failed != (c.Error != "") {
					t.Errorf("result %+v: failing=%v", c, failed)
				}
			}
		})
	}
}

func TestReadyzErrorText(t *testing.T) {
	t.Parallel()
	_, url := newTestServer(t, health.Config{Checks: []health.Check{
		health.BreakerClosed(func() retry.BreakerState { return retry.Open }),
		health.NATSConnected(func() nats.Status { return nats.RECONNECTING }),
	}})
	_, rep := readyz(t, url)
	if e := rep.Checks[0].Error; !strings.Contains(e, "open") {
		t.Errorf("breaker error %q does not say open", e)
	}
	if e := rep.Checks[1].Error; !strings.Contains(e, "reconnecting") {
		t.Errorf("nats error %q does not say reconnecting", e)
	}
}

func TestAddCheck(t *testing.T) {
	t.Parallel()
	h, url := newTestServer(t, health.Config{Checks: []health.Check{pass("a")}})
	if status, _ := readyz(t, url); status != 200 {
		t.Fatalf("status %d before AddCheck, want 200", status)
	}
	if err := h.AddCheck(fail("late", "not yet")); err != nil {
		t.Fatal(err)
	}
	if status, rep := readyz(t, url); status != 503 || !slices.Equal(rep.Failing, []string{"late"}) {
		t.Fatalf("after AddCheck: %d %+v, want 503 failing late", status, rep)
	}
	if err := h.AddCheck(pass("a")); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("AddCheck of a duplicate name: %v, want an error naming it", err)
	}
	if err := h.AddCheck(health.Check{Name: "Bad Name", Run: func(context.Context) error { return nil }}); err == nil {
		t.Fatal("AddCheck accepted a name with spaces")
	}
	if err := h.AddCheck(health.Check{Name: "norun"}); err == nil {
		t.Fatal("AddCheck accepted a check without Run")
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	_, url := newTestServer(t, health.Config{Registry: reg, Checks: []health.Check{fail("x", "down")}})

	// Alive even while not ready.
	if status, body, _ := get(t, http.MethodGet, url+health.PathHealthz); status != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q, want 200 ok", status, body)
	}
	if status, _, _ := get(t, http.MethodHead, url+health.PathHealthz); status != 200 {
		t.Fatalf("HEAD /healthz: %d, want 200", status)
	}
	status, body, _ := get(t, http.MethodGet, url+health.PathMetrics)
	if status != 200 || !strings.Contains(body, "test_things_total 3") {
		t.Fatalf("/metrics: %d, body without test_things_total 3:\n%s", status, body)
	}
	// The handler counts its own scrapes.
	if _, body, _ := get(t, http.MethodGet, url+health.PathMetrics); !strings.Contains(body, `promhttp_metric_handler_requests_total{code="200"} 1`) {
		t.Fatalf("second scrape does not count the first:\n%s", body)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, health.PathReadyz}, {http.MethodDelete, health.PathMetrics}, {http.MethodPut, health.PathHealthz},
	} {
		if status, _, _ := get(t, tc.method, url+tc.path); status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", tc.method, tc.path, status)
		}
	}
	if status, _, _ := get(t, http.MethodGet, url+"/nothing"); status != 404 {
		t.Errorf("GET /nothing: %d, want 404", status)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	tests := []struct {
		name string
		cfg  health.Config
		want string
	}{
		{"no registry", health.Config{}, "Config.Registry"},
		{"bad addr", health.Config{Registry: reg, Addr: "9464"}, "Config.Addr"},
		{"negative timeout", health.Config{Registry: reg, CheckTimeout: -time.Second}, "Config.CheckTimeout"},
		{"duplicate check", health.Config{Registry: reg, Checks: []health.Check{pass("a"), pass("a")}}, `"a" is there twice`},
		{"bad check name", health.Config{Registry: reg, Checks: []health.Check{pass("")}}, "check name"},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if _, err := health.NewHandler(tt.cfg); err == nil {
			t.Errorf("%s: NewHandler accepted the config", tt.name)
		}
	}
	if err := (health.Config{Registry: reg}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

// TestReadyzOperatorPause: a deliberate pause keeps /readyz at 200 and says
// so in the body, with its end, while it stands.
func TestReadyzOperatorPause(t *testing.T) {
	t.Parallel()
	end := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		r    pause.Record
		want string // in the note; "" for no note
	}{
		{"none", pause.Record{}, ""},
		{"until resumed", pause.Record{At: time.Now()}, "delivery paused until resumed by an operator since "},
		{"until a time", pause.Record{At: time.Now(), Until: end}, "delivery paused until 2031-01-02T03:04:05Z by an operator"},
		{"ended", pause.Record{At: time.Now().Add(-time.Hour), Until: time.Now().Add(-time.Minute)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, url := newTestServer(t, health.Config{Checks: []health.Check{health.OperatorPause(func() pause.Record { return tt.r })}})
			status, rep := readyz(t, url)
			if status != 200 || len(rep.Checks) != 1 {
				t.Fatalf("status %d, %+v; want 200 with one check", status, rep)
			}
			c := rep.Checks[0]
			if c.Name != health.CheckPaused || !c.OK {
				t.Fatalf("result %+v", c)
			}
			if tt.want == "" && c.Note != "" || !strings.Contains(c.Note, tt.want) {
				t.Fatalf("note %q, want %q in it", c.Note, tt.want)
			}
			if tt.want != "" && !strings.Contains(c.Note, "`pathupdate resume`") {
				t.Fatalf("note %q does not say how to lift the pause", c.Note)
			}
		})
	}
}
