package pathupdate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MinServerVersion is the oldest nats-server pathupdate works with. The
// workers take a partition each through pinned consumers (a priority
// group with PriorityPolicyPinned), which nats-server added in 2.11.0; an
// older server accepts such a consumer but drops its priority group, and
// no worker can then pull from it.
const MinServerVersion = "2.11.0"

// whyMinServerVersion is what MinServerVersion is needed for, for messages.
const whyMinServerVersion = "the workers' partition consumers are pinned consumers (priority groups), added in nats-server 2.11.0"

// ServerTooOldError says the NATS server is older than MinServerVersion.
type ServerTooOldError struct {
	Found string // the version the server announced
	Need  string // MinServerVersion
}

func (e *ServerTooOldError) Error() string {
	return fmt.Sprintf("the NATS server is version %s; pathupdate needs nats-server %s or newer because %s: upgrade the server (or point --nats-url at a newer one)",
		e.Found, e.Need, whyMinServerVersion)
}

// CheckServerVersion returns a *ServerTooOldError when version, as a
// server announces it ("2.10.29", "v2.11.0-RC.1"), is older than
// MinServerVersion, and an error when it is not a version at all. A
// pre-release counts as its release: 2.11.0-RC.1 has pinned consumers.
func CheckServerVersion(version string) error {
	have, err := parseVersion(version)
	if err != nil {
		return err
	}
	need, err := parseVersion(MinServerVersion)
	if err != nil {
		return err
	}
	for i := range have {
		if have[i] != need[i] {
			if have[i] < need[i] {
				return &ServerTooOldError{Found: version, Need: MinServerVersion}
			}
			return nil
		}
	}
	return nil
}

// parseVersion reads major.minor.patch, ignoring a leading v and anything
// after the patch number (-RC.1, +build).
func parseVersion(v string) ([3]int, error) {
	var out [3]int
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, fmt.Errorf("NATS server version %q is not major.minor.patch", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, fmt.Errorf("NATS server version %q is not major.minor.patch", v)
		}
		out[i] = n
	}
	return out, nil
}

// RequireServer checks the version of the server nc is connected to with
// CheckServerVersion. It says nothing (nil) while nc is not connected:
// the version is known again once it reconnects, and whatever is tried
// meanwhile fails on its own.
func RequireServer(nc *nats.Conn) error {
	if nc == nil {
		return errors.New("RequireServer: nil *nats.Conn")
	}
	v := nc.ConnectedServerVersion()
	if v == "" {
		return nil
	}
	return CheckServerVersion(v)
}

// StreamConflictError says a stream that pathupdate did not create stands
// where its trace stream must be: the stream of that name has another
// layout, or another stream already takes the trace subjects. Waiting does
// not change that; an operator moves the other stream's events into
// pathupdate's stream (docs/scaling.md, "A stream of events that is
// already there") and removes it.
type StreamConflictError struct {
	// Stream is the stream in the way: TraceStream itself, or the one that
	// takes its subjects ("" when the server would not say which).
	Stream string
	// Problem says what differs.
	Problem string
	// Err is the server's answer, when there was one.
	Err error
}

func (e *StreamConflictError) Error() string {
	name := e.Stream
	if name == "" {
		name = "another stream"
	}
	fix := "move its events into pathupdate's stream and delete it (docs/scaling.md, \"A stream of events that is already there\"), then start again"
	if e.Stream == TraceStream {
		fix = "it was created by something else: move it aside (copy its events out and delete it; docs/scaling.md, " +
			"\"A stream of events that is already there\") and let pathupdate create it"
	}
	return fmt.Sprintf("stream %s: %s: %s", name, e.Problem, fix)
}

// Unwrap returns the server's answer.
func (e *StreamConflictError) Unwrap() error { return e.Err }

// permanentAPICodes are JetStream API errors that name a setting, a limit
// or a layout: the same request fails the same way until an operator
// changes something. "JetStream not enabled" (10076) is not one: nats.go
// reports a request no server answered (no responders, as while a server
// restarts) as that too.
var permanentAPICodes = []jetstream.ErrorCode{
	jetstream.JSErrCodeJetStreamNotEnabledForAccount, // 10039
	10010,                   // JSClusterRequiredErr: clustering support required
	10052,                   // JSStreamInvalidConfigF: e.g. a storage type that cannot change
	10055,                   // JSStreamMirrorNotUpdatableErr
	jsErrCodeSubjectOverlap, // another stream takes the subjects
	10074,                   // JSStreamReplicasNotSupportedErr: replicas > 1 on a single server
	10113,                   // JSStreamMaxBytesRequired: the account requires max bytes
	10122,                   // JSStreamMaxStreamBytesExceeded: above the account's limit
}

// PermanentStartError reports whether err, met while starting
// (EnsureStreams, TracePartitions, a worker joining), is one that waiting
// cannot clear: a stream of another layout, a partition count that
// differs from the stream's, a server too old, JetStream disabled or
// refused by the server's permissions, a setting the server refuses.
// Everything else (no responders, a leader election, a connection
// refused, a timeout) may pass by itself and is worth waiting for.
func PermanentStartError(err error) bool {
	var (
		mismatch *PartitionsMismatchError
		conflict *StreamConflictError
		old      *ServerTooOldError
		api      *jetstream.APIError
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &mismatch), errors.As(err, &conflict), errors.As(err, &old):
		return true
	case errors.Is(err, nats.ErrPermissionViolation), errors.Is(err, nats.ErrAuthorization),
		errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return true
	case errors.Is(err, jetstream.ErrInvalidOption):
		// nats.go refusing an option outright, such as a priority group a
		// consumer created on an older server does not have.
		return true
	case errors.As(err, &api):
		for _, c := range permanentAPICodes {
			if api.ErrorCode == c {
				return true
			}
		}
	}
	return false
}
