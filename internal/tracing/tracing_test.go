package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/internal/tracing"
)

// TestProviderFromEnvironment: no provider unless an OTLP endpoint is set
// and nothing turns tracing off; what pathupdate cannot export with is
// refused with an error naming the variable.
func TestProviderFromEnvironment(t *testing.T) {
	t.Parallel()
	endpoint := map[string]string{tracing.EnvEndpoint: "http://127.0.0.1:4318"}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range endpoint {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		refused string // the variable the error names
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", endpoint, true, ""},
		{"traces endpoint", map[string]string{tracing.EnvTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"http/protobuf", with(map[string]string{tracing.EnvProtocol: "http/protobuf"}), true, ""},
		{"exporter none", with(map[string]string{tracing.EnvTracesExporter: "none"}), false, ""},
		{"sdk disabled", with(map[string]string{tracing.EnvSDKDisabled: "true"}), false, ""},
		{"grpc", with(map[string]string{tracing.EnvProtocol: "grpc"}), false, tracing.EnvProtocol},
		{"traces json", with(map[string]string{tracing.EnvTracesProtocol: "http/json"}), false, tracing.EnvTracesProtocol},
		{"zipkin", with(map[string]string{tracing.EnvTracesExporter: "zipkin"}), false, tracing.EnvTracesExporter},
	}
	for _, tt := range tests {
		tp, stop, err := tracing.Provider(context.Background(), "test", func(k string) string { return tt.env[k] })
		if tt.refused != "" {
			if !errors.Is(err, tracing.ErrUnsupported) || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("%s: %v, want ErrUnsupported naming %s", tt.name, err, tt.refused)
			}
			continue
		}
		if err != nil || (tp != nil) != tt.on {
			t.Errorf("%s: provider %v, %v; want on=%v", tt.name, tp, err, tt.on)
		}
		if err := stop(context.Background()); err != nil {
			t.Errorf("%s: stop: %v", tt.name, err)
		}
	}
}

// TestProviderExportsOverOTLP: a span ended before stop reaches the
// collector at the endpoint, on OTLP's traces path.
func TestProviderExportsOverOTLP(t *testing.T) {
	got := make(chan string, 8)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
	}))
	defer collector.Close()
	t.Setenv(tracing.EnvEndpoint, collector.URL) // the exporter reads the variables itself
	tp, stop, err := tracing.Provider(context.Background(), "test", os.Getenv)
	if err != nil || tp == nil {
		t.Fatalf("provider %v, %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "one")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req != "POST /v1/traces application/x-protobuf" {
			t.Errorf("the collector got %q", req)
		}
	case <-ctx.Done():
		t.Fatal("no export reached the collector")
	}
}
