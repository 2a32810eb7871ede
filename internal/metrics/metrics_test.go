package metrics_test

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/worker"
)

// serve exposes reg over real HTTP for the test.
func serve(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func newMetrics(t *testing.T, cfg metrics.Config) (*metrics.Metrics, string) {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	m, err := metrics.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, serve(t, cfg.Registry)
}

func TestObserverCounts(t *testing.T) {
	t.Parallel()
	m, url := newMetrics(t, metrics.Config{})
	now := time.Now()
	ok := pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: 200}
	sysErr := pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: -1, HTTPStatus: 200}
	notFound := pathupdate.Outcome{Kind: pathupdate.Rejected, ErrCode: 40199, HTTPStatus: 200}

	m.APICall(sysErr, 30*time.Millisecond)
	m.Retried(sysErr)
	m.APICall(ok, 20*time.Millisecond)
	m.Settled(worker.Settlement{Delivered: true, Outcome: ok, Attempts: 2, Published: now.Add(-3 * time.Second), At: now})
	m.APICall(notFound, 10*time.Millisecond)
	m.Settled(worker.Settlement{Reason: deadletter.ReasonRejected, Outcome: notFound, Attempts: 1, Published: now, At: now})
	m.Settled(worker.Settlement{Reason: deadletter.ReasonInvalidEvent, Published: now, At: now})
	m.Settled(worker.Settlement{Reason: "something new", Published: now, At: now})
	m.Settled(worker.Settlement{Delivered: true, Outcome: ok, Attempts: 1, Late: true})
	m.Settled(worker.Settlement{Delivered: true, Outcome: ok}) // no timestamps: no latency sample
	m.BreakerChanged(retry.Closed, retry.Open)
	m.TokenFetched(metrics.SourceStable, nil)
	m.TokenFetched(metrics.SourceStable, &pathupdate.TokenError{Op: "stable_token", ErrCode: 40125})
	m.TokenFetched("/run/secrets/token", errors.New("boom"))

	f := scrape(t, url)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pathupdate_api_calls_total", []string{"kind=transient", "errcode=-1"}, 1},
		{"pathupdate_api_calls_total", []string{"kind=delivered", "errcode=0"}, 1},
		{"pathupdate_api_calls_total", []string{"kind=rejected", "errcode=40199"}, 1},
		{"pathupdate_api_call_duration_seconds", nil, 3},
		{"pathupdate_retries_total", []string{"errcode=-1"}, 1},
		{"pathupdate_events_total", []string{"outcome=delivered", "reason="}, 3},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=rejected"}, 1},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=invalid_event"}, 1},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=retries_exhausted"}, 0},
		{"pathupdate_events_total", []string{"outcome=dead_lettered", "reason=other"}, 1},
		{"pathupdate_invalid_events_total", nil, 1},
		{"pathupdate_late_events_total", nil, 1},
		{"pathupdate_delivery_latency_seconds", nil, 1},
		{"pathupdate_breaker_state", nil, 2},
		{"pathupdate_breaker_transitions_total", []string{"to=open"}, 1},
		{"pathupdate_breaker_transitions_total", []string{"to=closed"}, 0},
		{"pathupdate_token_fetches_total", []string{"source=stable", "result=ok"}, 1},
		{"pathupdate_token_fetches_total", []string{"source=stable", "result=config_broken"}, 1},
		{"pathupdate_token_fetches_total", []string{"source=other", "result=error"}, 1},
	}
	for _, c := range checks {
		if got := f.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if h := f["pathupdate_delivery_latency_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() != 3 {
		t.Errorf("delivery latency sum = %v, want 3 (published 3 s before settled)", h.GetSampleSum())
	}
	if h := f["pathupdate_api_call_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() < 0.059 || h.GetSampleSum() > 0.061 {
		t.Errorf("api call duration sum = %v, want 0.06", h.GetSampleSum())
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the Go runtime collector is missing")
	}
	if _, ok := f.sum("pathupdate_held_messages"); ok {
		t.Error("pathupdate_held_messages exported before SetLoad")
	}
	if _, ok := f["pathupdate_consumer_pending"]; ok {
		t.Error("pathupdate_consumer_pending exported without a ConsumerLag func")
	}

	m.BreakerChanged(retry.Open, retry.HalfOpen)
	f = scrape(t, url)
	if got := f.get(t, "pathupdate_breaker_state"); got != 1 {
		t.Errorf("breaker_state after half_open = %v, want 1", got)
	}
	m.BreakerChanged(retry.HalfOpen, retry.Closed)
	f = scrape(t, url)
	if got := f.get(t, "pathupdate_breaker_state"); got != 0 {
		t.Errorf("breaker_state after closed = %v, want 0", got)
	}
}

func TestSetLoad(t *testing.T) {
	t.Parallel()
	m, url := newMetrics(t, metrics.Config{NoRuntimeCollectors: true})
	m.SetLoad(func() (int, int) { return 7, 3 })
	f := scrape(t, url)
	if held, lanes := f.get(t, "pathupdate_held_messages"), f.get(t, "pathupdate_lanes"); held != 7 || lanes != 3 {
		t.Fatalf("held, lanes = %v, %v, want 7, 3", held, lanes)
	}
	if _, ok := f["go_goroutines"]; ok {
		t.Error("go_goroutines exported with NoRuntimeCollectors")
	}
	m.SetLoad(nil)
	if _, ok := scrape(t, url).sum("pathupdate_held_messages"); ok {
		t.Fatal("pathupdate_held_messages still exported after SetLoad(nil)")
	}
}

func TestSetPause(t *testing.T) {
	t.Parallel()
	now := time.Now()
	end := now.Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name          string
		set           func() pause.Record // nil: SetPause not called
		paused, until float64
	}{
		{"never set", nil, 0, 0},
		{"no pause", func() pause.Record { return pause.Record{} }, 0, 0},
		{"until resumed", func() pause.Record { return pause.Record{At: now} }, 1, math.Inf(1)},
		{"until a time", func() pause.Record { return pause.Record{At: now, Until: end} }, 1, float64(end.Unix())},
		{"ended", func() pause.Record { return pause.Record{At: now.Add(-time.Hour), Until: now.Add(-time.Second)} }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, url := newMetrics(t, metrics.Config{NoRuntimeCollectors: true})
			if tt.set != nil {
				m.SetPause(tt.set)
			}
			f := scrape(t, url)
			if got := f.get(t, "pathupdate_paused"); got != tt.paused {
				t.Errorf("pathupdate_paused = %v, want %v", got, tt.paused)
			}
			if got := f.get(t, "pathupdate_paused_until_seconds"); got != tt.until {
				t.Errorf("pathupdate_paused_until_seconds = %v, want %v", got, tt.until)
			}
		})
	}
}

func TestConsumerLagFailures(t *testing.T) {
	t.Parallel()
	t.Run("error keeps the partial result and the rest of the scrape", func(t *testing.T) {
		t.Parallel()
		m, url := newMetrics(t, metrics.Config{ConsumerLag: func(context.Context) (map[string]metrics.ConsumerLag, error) {
			return map[string]metrics.ConsumerLag{"3": {Pending: 5, AckPending: 2}}, errors.New("consumer pathupdate-p4: timeout")
		}})
		m.APICall(pathupdate.Outcome{Kind: pathupdate.Delivered, HTTPStatus: 200}, time.Millisecond)
		f := scrape(t, url)
		if got := f.get(t, "pathupdate_consumer_lag_read_ok"); got != 0 {
			t.Errorf("read_ok = %v, want 0", got)
		}
		if got := f.get(t, "pathupdate_consumer_pending", "partition=3"); got != 5 {
			t.Errorf("pending{3} = %v, want 5", got)
		}
		if got := f.get(t, "pathupdate_consumer_ack_pending", "partition=3"); got != 2 {
			t.Errorf("ack_pending{3} = %v, want 2", got)
		}
		if got := f.get(t, "pathupdate_api_calls_total"); got != 1 {
			t.Errorf("api_calls_total = %v, want 1", got)
		}
	})
	t.Run("a slow read is cut at LagTimeout", func(t *testing.T) {
		t.Parallel()
		_, url := newMetrics(t, metrics.Config{LagTimeout: 50 * time.Millisecond, ConsumerLag: func(ctx context.Context) (map[string]metrics.ConsumerLag, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}})
		start := time.Now()
		f := scrape(t, url)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("scrape took %s with a 50ms lag timeout", took)
		}
		if got := f.get(t, "pathupdate_consumer_lag_read_ok"); got != 0 {
			t.Errorf("read_ok = %v, want 0", got)
		}
		if _, ok := f["pathupdate_consumer_pending"]; ok {
			t.Error("pending exported though the read returned nothing")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := metrics.New(metrics.Config{})
	if err == nil || !strings.Contains(err.Error(), "Config.Registry") {
		t.Fatalf("New without a registry: %v, want an error naming Config.Registry", err)
	}
	_, err = metrics.New(metrics.Config{Registry: prometheus.NewRegistry(), LagTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "Config.LagTimeout") {
		t.Fatalf("New with a negative LagTimeout: %v, want an error naming Config.LagTimeout", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(metrics.Config{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := metrics.New(metrics.Config{Registry: reg}); !errors.As(err, &are) {
		t.Fatalf("second New on one registry: %v, want an AlreadyRegisteredError", err)
	}
}
