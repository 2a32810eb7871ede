package natsserver

import (
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// serverLog routes nats-server's own log calls to a zerolog.Logger and
// catches its fatal errors. nats-server's Fatalf would exit the process with
// the default logger; here it only logs, and Start turns it into an error.
type serverLog struct {
	log zerolog.Logger

	once  sync.Once
	fatal chan fatalError // receives the first fatal error, once
}

// fatalError is one Fatalf call: the message, and the error values among
// its arguments so that callers can match them with errors.Is.
type fatalError struct {
	format string
	msg    string
	errs   []error
}

func newServerLog(l zerolog.Logger) *serverLog {
	return &serverLog{log: l.With().Str("component", "nats-server").Logger(), fatal: make(chan fatalError, 1)}
}

// Notices are the server's normal chatter (listening on, starting
// JetStream...): worth seeing when debugging the worker, not by default.
func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

func (l *serverLog) Fatalf(format string, v ...any) {
	f := fatalError{format: format, msg: fmt.Sprintf(format, v...)}
	for _, a := range v {
		if err, ok := a.(error); ok {
			f.errs = append(f.errs, err)
		}
	}
	l.log.Error().Msg(f.msg)
	l.once.Do(func() { l.fatal <- f })
}

// Error makes a fatalError usable as the cause of Start's error.
func (f fatalError) Error() string { return f.msg }

// Unwrap exposes the error arguments to errors.Is and errors.As.
func (f fatalError) Unwrap() []error { return f.errs }

// onRoutePort tells whether the failure was about the cluster (route) port.
func (f fatalError) onRoutePort() bool { return strings.Contains(f.format, "router port") }
