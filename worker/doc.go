// Package worker consumes trace events from JetStream and delivers them to
// WeChat in stream order per waybill, concurrently across waybills.
//
// The flow of one message:
//
//	JetStream consumer -> Worker.handle (serial) -> the waybill's lane (FIFO)
//	  -> decode -> breaker.Wait -> Deliverer.UpdatePath -> Outcome
//	  -> retry.Policy.Decide -> Ack | retry later | dead letter, then Ack
//
// Every message handed to the worker is "held" until it is acked, dead
// lettered or handed back; held messages are kept alive with InProgress so
// JetStream does not redeliver them while they wait behind their waybill's
// head or for a retry. A redelivery of a message already held replaces the
// held delivery instead of being processed twice. The number of held
// messages is bounded by the consumer's MaxAckPending, so memory is bounded
// whatever the backlog.
//
// The package must not decide what an Outcome means (package retry does),
// build dead-letter records' wire form (package deadletter) or talk HTTP
// (package pathupdate). It keeps no package-level state.
package worker
