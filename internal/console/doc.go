// Package console is the operator's web console: a page of the
// deployment's workers, lag, rates and dead letters; the dead letters
// themselves, filtered and paged without a cap, to inspect, replay (one,
// a selection or a whole filter, with a dry-run preview and a new token
// for one waybill) and purge; a waybill's timeline from the delivery
// history; and pausing and resuming delivery. `pathupdate console` serves
// it, and a worker does too with --console-addr.
//
// Pages are rendered on the server (html/template); a small script only
// refreshes the overview and ticks a selection's boxes, so every page and
// action works without it. Everything is embedded in the binary.
//
// It must stay safe where it is reachable: off loopback it refuses to
// start without a token; every state-changing request is a POST that
// passes a cross-origin check and carries the session's CSRF token; a
// read-only console offers and accepts no action; phone numbers in
// action_msg are masked and tokens hidden unless an operator reveals one.
// It must never put a secret (the console token, an app secret, an
// access_token, a NATS password) in a page, a log line or an error, and it
// must not change anything in JetStream except through the packages that
// own it (deadletter's Replay and Purge, pause's Pause and Resume).
package console
