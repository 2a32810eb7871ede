package metrics_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// families is one parsed scrape.
type families map[string]*dto.MetricFamily

// scrape GETs url (a /metrics endpoint) over HTTP and parses the text
// exposition format strictly (legacy metric names).
func scrape(t *testing.T, url string) families {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: parse: %v", url, err)
	}
	return fams
}

// matches reports whether m has every label of want ("name=value" pairs).
func matches(m *dto.Metric, want []string) bool {
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sample is a series' value: a counter's or gauge's value, a histogram's
// sample count.
func sample(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sum adds up the series of family name that carry every label of want;
// found is false when no series matched.
func (f families) sum(name string, want ...string) (total float64, found bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if matches(m, want) {
			total += sample(m)
			found = true
		}
	}
	return total, found
}

// get is sum for a series that must exist.
func (f families) get(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	v, ok := f.sum(name, want...)
	if !ok {
		t.Fatalf("no series %s%v in the scrape", name, want)
	}
	return v
}

// series counts the series of the families whose name starts with prefix.
func (f families) series(prefix string) int {
	n := 0
	for name, mf := range f {
		if strings.HasPrefix(name, prefix) {
			n += len(mf.GetMetric())
		}
	}
	return n
}
