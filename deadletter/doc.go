// Package deadletter is the dead-letter records of pathupdate and the
// operations on them: a Record is one event set aside in the
// LOGISTICS_DEADLETTER stream, its original bytes as the payload and why it
// failed in headers (Pathupdate-Reason, Pathupdate-Errcode, ...); the
// Writer stores one, exactly once per original stream sequence. Listing,
// replaying and purging operate on the same records.
//
// It must not decide when an event is dead-lettered: that is package retry
// (from an Outcome and a retry budget), and the worker acknowledges the
// original only after Write returned. It creates no streams
// (pathupdate.EnsureStreams does) and keeps no package-level state.
package deadletter
