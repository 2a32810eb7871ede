package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Env names the standard variables Provider decides by.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// ErrUnsupported is matched by Provider's error for a setting asking for
// what pathupdate does not export with (gRPC, JSON, another exporter).
var ErrUnsupported = errors.New("tracing: unsupported setting")

// Provider returns the TracerProvider the environment asks for (getenv,
// os.Getenv in the commands) and the function that flushes and stops it;
// a nil provider and a no-op stop when no OTLP endpoint is set, when
// OTEL_TRACES_EXPORTER is none or OTEL_SDK_DISABLED is true. service is
// the service.name unless OTEL_SERVICE_NAME says otherwise. The exporter
// connects lazily: a collector that is down loses spans, never events.
func Provider(ctx context.Context, service string, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	stop := func(context.Context) error { return nil }
	if strings.EqualFold(getenv(EnvSDKDisabled), "true") {
		return nil, stop, nil
	}
	switch e := getenv(EnvTracesExporter); e {
	case "", "otlp":
	case "none":
		return nil, stop, nil
	default:
		return nil, stop, fmt.Errorf("%w: %s=%q: pathupdate exports spans over OTLP only: use otlp, or none for no spans", ErrUnsupported, EnvTracesExporter, e)
	}
	if getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
		return nil, stop, nil
	}
	for _, name := range []string{EnvTracesProtocol, EnvProtocol} {
		switch p := getenv(name); p {
		case "", "http/protobuf":
		default:
			return nil, stop, fmt.Errorf("%w: %s=%q: pathupdate sends OTLP over HTTP with protobuf: set http/protobuf (a collector's port 4318) or leave it unset", ErrUnsupported, name, p)
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, stop, fmt.Errorf("tracing: OTLP exporter (%s / %s): %w", EnvEndpoint, EnvTracesEndpoint, err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default service name.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, stop, fmt.Errorf("tracing: resource from OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
