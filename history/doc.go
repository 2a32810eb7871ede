// Package history keeps the delivery history of every waybill and answers
// "did WeChat get it?": a record for each settlement (delivered,
// dead-lettered), each retry, and each operator replay or purge, in stream
// LOGISTICS_HISTORY on logistics.history.<waybill_id>; and a waybill's
// Timeline, assembled from that stream, the trace stream (events not yet
// settled) and the dead-letter stream.
//
// A Writer takes records without ever blocking its caller: a worker's lane
// must not wait for history. Records are batched and published in the
// background; when the buffer is full or the stream unavailable they are
// dropped and counted, never retried at the cost of delivery. A record lost
// to a crash costs that record only.
//
// It must not decide anything about delivery, hold trace messages, or keep
// a waybill's token whole (the last four characters at most). It keeps no
// package-level state.
package history
