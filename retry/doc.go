// Package retry decides what a worker does with the Outcome of one
// updatePath call: ack it, dead-letter it, try it again later, or pause
// because the API fails for every event. Policy holds the per-event rules
// (backoff with jitter, an attempt budget); Breaker holds the rules for
// conditions every event meets (an outage, a broken access_token or
// credentials, a quota), so that those never spend an event's budget and
// never dead-letter anything. Until repeats an operation with backoff while
// what it needs is not ready (JetStream at start, a dead-letter write during
// a failover), stopping at once on an error marked Permanent.
//
// It must not talk to NATS or HTTP, hold messages, or write dead letters:
// it only answers questions (Until calls the operation it is given and
// nothing else). It keeps no package-level state; clocks and
// loggers are passed in.
package retry
