package health_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pathupdate/pathupdate/internal/health"
)

// TestRootAnswersAsHealthz: a platform probing the port at / (WeChat Cloud
// Hosting's start-up probe) gets the liveness answer; other unknown paths
// are still 404.
func TestRootAnswersAsHealthz(t *testing.T) {
	h, err := health.NewHandler(health.Config{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]int{"/": http.StatusOK, "/healthz": http.StatusOK, "/nope": http.StatusNotFound} {
		if code, body, _ := get(t, http.MethodGet, srv.URL+path); code != want || want == http.StatusOK && body != "ok\n" {
			t.Errorf("GET %s: %d %q, want %d", path, code, body, want)
		}
	}
}
