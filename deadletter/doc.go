// Package deadletter is the dead-letter records of pathupdate and the
// operations on them: a Record is one event set aside in the
// LOGISTICS_DEADLETTER stream, its original bytes as the payload and why it
// failed in headers (Pathupdate-Reason, Pathupdate-Errcode, ...); the
// Writer stores one, exactly once per original stream sequence.
//
// A Store is what operators (and `pathupdate deadletter`) do with them:
// List streams the records a Filter selects in stream order without
// loading them all, Get reads one, Stats and Count count, Replay
// republishes events to logistics.trace.<waybill> in their original order
// per waybill and removes each record only after its PubAck (idempotent
// across interruptions within the duplicate window), and Purge removes
// records. docs/deadletters.md states the semantics.
//
// It must not decide when an event is dead-lettered: that is package retry
// (from an Outcome and a retry budget), and the worker acknowledges the
// original only after Write returned. It does not deliver events (a
// replayed event goes through the workers like any other), creates no
// streams (pathupdate.EnsureStreams does) and keeps no package-level
// state.
package deadletter
