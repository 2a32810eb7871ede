// Package natsserver runs an embedded NATS server with JetStream inside the
// process, so that `pathupdate worker` and `pathupdate demo` work with no
// NATS URL, and so that tests run against a real server.
//
// It must not know about streams, subjects or events (that is package
// pathupdate and the worker), and it must not be used when the user gave a
// NATS URL. It keeps no package-level state: the logger is passed in.
package natsserver
