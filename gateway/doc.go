// Package gateway is the HTTP door for producers that cannot hold a NATS
// client: POST /v1/events takes one trace event (a JSON object) or a JSON
// array of them, validates each with pathupdate.DecodeEvent, publishes the
// valid ones through a pathupdate.Publisher and answers only after every
// PubAck, with a result per event (accepted, duplicate, invalid, failed).
//
// A Handler serves the endpoint inside any mux; a Server listens on its own
// address (loopback by default) for `pathupdate gateway` or a worker that
// runs the gateway beside its consumer.
//
// It must not: create or change streams (a worker does), answer 2xx for an
// event whose PubAck it has not seen, publish events of one waybill out of
// their order in the request, or write the bearer token or the
// Authorization header anywhere (logs, errors, answers). docs/gateway.md is
// the user's guide and docs/openapi/gateway.yaml the API description.
package gateway
