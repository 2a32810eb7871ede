// Package demo runs the whole product on one machine with nothing but Go:
// an embedded JetStream server, the WeChat sandbox, a worker and sample
// traffic with injected failures, and prints what happened. It is what
// `pathupdate demo` runs and what a new user sees first.
//
// It must not hold delivery logic of its own: it wires the real packages
// together exactly as `pathupdate worker --sandbox` does and only observes.
package demo
