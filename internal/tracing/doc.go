// Package tracing builds the OpenTelemetry TracerProvider that the
// commands hand to the publisher, the gateway, the worker and the
// dead-letter store: spans exported over OTLP (HTTP, protobuf) when the
// standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set, and no provider at all otherwise, so that tracing left off costs
// nothing. The exporter reads the rest of the standard variables itself
// (headers, certificates, compression, timeout); the SDK reads
// OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// It sets no global: the provider is returned and passed down through the
// configs. It must not be imported by the public packages, which take any
// trace.TracerProvider.
package tracing
