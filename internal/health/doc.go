// Package health serves a worker's operational HTTP endpoints: /metrics
// (Prometheus, from the registry it is given), /healthz (the process is
// alive and serving) and /readyz (every readiness check passes: NATS
// connected, consuming, circuit breaker closed; otherwise 503 with a JSON
// body naming each failing check).
//
// It listens on loopback (AddrDefault) unless told otherwise: the
// endpoints have no authentication. It must not run checks that block
// without honouring their context, nor put secrets in a check's error:
// the error text is part of the /readyz answer.
package health
