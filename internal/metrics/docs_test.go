package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/worker"
)

const (
	dashboardFile = "../../docs/grafana/pathupdate.json"
	alertsFile    = "../../docs/prometheus/alerts.yml"
	alertTests    = "../../docs/prometheus/alerts_test.yml"
	referenceFile = "../../docs/metrics.md"
)

// knownNames are the series names a worker exports: every family of a
// Metrics with every feature used once, histograms with their suffixes.
func knownNames(t *testing.T) (all, ours map[string]bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registry: reg, ConsumerLag: func(context.Context) (map[string]metrics.ConsumerLag, error) {
		return map[string]metrics.ConsumerLag{"0": {}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	o := pathupdate.Outcome{Kind: pathupdate.Transient, ErrCode: -1, HTTPStatus: 200}
	m.APICall(o, time.Millisecond)
	m.Retried(o)
	m.Settled(worker.Settlement{Delivered: true, Published: time.Now(), At: time.Now()})
	m.BreakerChanged(retry.Closed, retry.Open)
	m.TokenFetched(metrics.SourceStable, nil)
	m.SetLoad(func() (int, int) { return 0, 0 })
	m.SetPause(func() pause.Record { return pause.Record{} })
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	all, ours = map[string]bool{}, map[string]bool{}
	for _, f := range fams {
		names := []string{f.GetName()}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		}
		for _, n := range names {
			all[n] = true
			if strings.HasPrefix(n, "pathupdate_") {
				ours[n] = true
			}
		}
	}
	// Families of the health handler's own instrumentation.
	all["promhttp_metric_handler_requests_total"] = true
	return all, ours
}

var metricName = regexp.MustCompile(`\b(?:pathupdate|go|process|promhttp)_[a-z_]+\b`)

// checkNames fails for every metric name in text that no worker exports.
func checkNames(t *testing.T, where, text string, known map[string]bool) {
	t.Helper()
	for _, n := range metricName.FindAllString(text, -1) {
		if !known[n] {
			t.Errorf("%s names %s, which no worker exports", where, n)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	all, ours := knownNames(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct {
				W, H int
			} `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: title %q, uid %q, %d panels", dashboardFile, dash.Title, dash.UID, len(dash.Panels))
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d: no title or size", p.ID)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q query %s: empty or unbalanced", p.Title, tg.RefID)
			}
			checkNames(t, "panel "+p.Title, tg.Expr, all)
			exprs = append(exprs, tg.Expr)
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(n, "_bucket")] = true
			}
		}
	}
	checkDashboardPromQL(t, exprs)
	for _, n := range []string{"pathupdate_events_total", "pathupdate_api_calls_total", "pathupdate_breaker_state",
		"pathupdate_consumer_pending", "pathupdate_delivery_latency_seconds", "pathupdate_held_messages"} {
		if !used[n] || !ours[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}

// checkDashboardPromQL parses the dashboard's queries with promtool, when
// it is installed, as recording rules with Grafana's variables filled in.
func checkDashboardPromQL(t *testing.T, exprs []string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: dashboard queries not parsed")
		return
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(vars.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// TestAlertRules checks alerts.yml with a small line parser (the module
// has no YAML library): two-space indentation without tabs, every rule an
// alert with expr, for, a severity label, a summary and a description,
// names unique, and only metrics a worker exports. With promtool on PATH
// it also runs `promtool check rules` and the cases in alerts_test.yml.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	all, _ := knownNames(t)
	f, err := os.Open(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type rule struct {
		name string
		keys map[string]bool
	}
	var rules []*rule
	var text strings.Builder
	sawGroups := false
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		trimmed := strings.TrimSpace(l)
		if strings.Contains(l, "\t") {
			t.Errorf("%s:%d: tab", alertsFile, line)
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if indent := len(l) - len(strings.TrimLeft(l, " ")); indent%2 != 0 {
			t.Errorf("%s:%d: indentation %d is not a multiple of 2", alertsFile, line, indent)
		}
		if !sawGroups {
			if trimmed != "groups:" {
				t.Fatalf("%s:%d: first statement %q, want groups:", alertsFile, line, trimmed)
			}
			sawGroups = true
			continue
		}
		text.WriteString(l + "\n")
		if name, ok := strings.CutPrefix(trimmed, "- alert: "); ok {
			rules = append(rules, &rule{name: name, keys: map[string]bool{}})
			continue
		}
		if strings.HasPrefix(trimmed, "- record:") {
			t.Errorf("%s:%d: recording rule in the alerts file", alertsFile, line)
		}
		if len(rules) > 0 {
			key, _, _ := strings.Cut(trimmed, ":")
			rules[len(rules)-1].keys[key] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.name] || !regexp.MustCompile(`^Pathupdate[A-Z][A-Za-z]+$`).MatchString(r.name) {
			t.Errorf("alert %q: duplicate or not PathupdateCamelCase", r.name)
		}
		seen[r.name] = true
		for _, k := range []string{"expr", "for", "labels", "severity", "annotations", "summary", "description"} {
			if !r.keys[k] {
				t.Errorf("alert %s has no %s", r.name, k)
			}
		}
	}
	for _, want := range []string{"PathupdateBreakerOpen", "PathupdateDeadLettersRising", "PathupdateConsumerLagGrowing",
		"PathupdateNoDeliveries", "PathupdateTokenFetchFailures"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	checkNames(t, alertsFile, text.String(), all)

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: rule syntax and alerts_test.yml not checked (apt-get install prometheus)")
		return
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertsFile)}, {"test", "rules", filepath.Base(alertTests)}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestReference: docs/metrics.md names every metric a worker exports.
func TestReference(t *testing.T) {
	t.Parallel()
	all, ours := knownNames(t)
	b, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for n := range ours {
		if strings.HasSuffix(n, "_bucket") || strings.HasSuffix(n, "_sum") || strings.HasSuffix(n, "_count") {
			continue
		}
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("%s does not describe %s", referenceFile, n)
		}
	}
	checkNames(t, referenceFile, doc, all)
	for _, c := range metrics.KnownErrcodes() {
		if !strings.Contains(doc, "`"+metrics.ErrcodeLabel(pathupdate.Outcome{ErrCode: c, HTTPStatus: 200})+"`") {
			t.Errorf("%s does not list errcode label %d", referenceFile, c)
		}
	}
}
