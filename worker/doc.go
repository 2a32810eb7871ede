// Package worker consumes trace events from JetStream and delivers them to
// WeChat in stream order per waybill, concurrently across waybills.
//
// A Worker holds some partitions of the trace stream (membership.go
// decides which); each partition is one pinned consumer. The flow of one
// message through a partition:
//
//	partition.start (consumer.go): CreateOrUpdateConsumer, drop a pin no
//	  live worker holds (dropOrphanPin), Consume
//	  -> partition.handle (partition.go; serial per partition)
//	       lanes.hold: a redelivery of a held message replaces it
//	       gate.pinned: a new pin id closes the takeover gate
//	       lanes.enqueue: into its waybill's lane, in stream order
//	  -> gate.watch until no other worker holds the partition's messages
//	  -> partition.runLane: one goroutine per lane with work, head first
//	  -> partition.settle (settle.go): decode -> wait while an operator's
//	       pause stands (pause.go), while WeChat's daily quota is spent
//	       (quota.go), for this worker's share of the rate limit (rate.go)
//	       and for the breaker, then for a call slot (slots.go: the lane
//	       with most waiting first; after a delivery it keeps its slot
//	       while it would be first in line) -> Deliverer.UpdatePath on one of the
//	       worker's callers (callers.go) -> Outcome
//	       -> package retry decides what the outcome means;
//	          settle only carries it out:
//	  -> Ack | retry after a delay | wait for the breaker | dead letter, then Ack
//	  -> lanes.settled: the lane moves on
//
// On release (a rebalance, or Stop) partition.release drains the consumer,
// lets calls in progress finish, and partition.handBack returns every held
// message in stream order, confirmed by the server (lanes.takeAll), then
// unpins the partition so the next owner starts at once.
//
// Every message handed to the worker is "held" until it is acked, dead
// lettered or handed back; held messages are kept alive with InProgress so
// JetStream does not redeliver them while they wait behind their waybill's
// head, for a retry, or behind the gate. The number of held messages is
// bounded by the consumer's MaxAckPending, so memory is bounded whatever
// the backlog.
//
// The package must not decide what an Outcome means (package retry does),
// build dead-letter records' wire form (package deadletter) or talk HTTP
// (package pathupdate). It keeps no package-level state.
package worker
