// Package metrics exposes what a pathupdate worker does as Prometheus
// metrics: events by outcome, API calls by errcode, latencies, the
// circuit breaker, held messages, token fetches and consumer lag per
// partition. docs/metrics.md lists every metric.
//
// *Metrics implements worker.Observer; every collector lives on the
// *prometheus.Registry the caller passes in. The package keeps no
// package-level state and never touches the global registry, so tests and
// several workers in one process each have their own.
//
// It must not put an unbounded value into a label: never a waybill id, a
// token, an errmsg or an error string. Every label value comes from a
// fixed set (errcodes the project knows by number, anything else
// "other"), so the number of series stays small whatever the traffic.
package metrics
