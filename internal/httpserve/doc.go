// Package httpserve is the lifecycle of pathupdate's HTTP servers (the
// gateway, the health endpoints, the sandbox): listen, serve in the
// background, report the address, and stop once, gracefully or at once,
// returning only when every request handler has returned.
//
// A stop that cuts requests (Close, or Shutdown whose context ended)
// closes their connections first and then cancels their contexts, so a
// handler that was waiting (a publish, an injected latency) ends without
// getting an answer through: the client sees none and must send again.
//
// It must not know what it serves: routing, authentication and answers
// are the handler's. It keeps no package-level state and never logs a
// request.
package httpserve
