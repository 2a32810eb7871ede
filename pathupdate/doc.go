// Package pathupdate is everything that talks about a trace event and about
// WeChat's logistics.updatePath API: the event and its wire format, its
// content-derived id, the HTTPS client with access-token management, the
// classification of every answer into an Outcome, and the JetStream
// publisher and stream topology producers use. It also holds FieldError,
// the error every Config.Validate of the module reports per field, so that
// a caller that read a setting elsewhere can say where.
//
// It must not decide what a worker does with an Outcome (that is package
// retry), hold messages or lanes (package worker), or write dead letters
// (package deadletter). It keeps no package-level state: loggers, clocks and
// HTTP clients are passed in. Secrets (app secret, access_token) never leave
// it in a log line, an error string or a panic.
package pathupdate
