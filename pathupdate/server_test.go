package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestCheckServerVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		version string
		tooOld  bool
		invalid bool
	}{
		{version: "2.10.29", tooOld: true},
		{version: "2.10.0", tooOld: true},
		{version: "v2.10.22", tooOld: true},
		{version: "2.9.25", tooOld: true},
		{version: "1.99.99", tooOld: true},
		{version: "2.11.0"},
		{version: "2.11.0-RC.1"},
		{version: "v2.11.4"},
		{version: "2.12.0-dev"},
		{version: "2.15.2"},
		{version: "3.0.0"},
		{version: "", invalid: true},
		{version: "2.11", invalid: true},
		{version: "two.eleven.zero", invalid: true},
		{version: "2.11.x", invalid: true},
		{version: "2.-1.0", invalid: true},
	} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			err := CheckServerVersion(tt.version)
			var old *ServerTooOldError
			switch {
			case tt.tooOld:
				if !errors.As(err, &old) || old.Found != tt.version || old.Need != MinServerVersion {
					t.Fatalf("CheckServerVersion(%q) = %v, want *ServerTooOldError{%q, %q}", tt.version, err, tt.version, MinServerVersion)
				}
				msg := err.Error()
				for _, want := range []string{tt.version, "2.11.0", "pinned consumers", "upgrade"} {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q does not say %q", msg, want)
					}
				}
				if !PermanentStartError(fmt.Errorf("connect: %w", err)) {
					t.Error("a server too old is not a permanent start error")
				}
			case tt.invalid:
				if err == nil || errors.As(err, &old) || !strings.Contains(err.Error(), "major.minor.patch") {
					t.Fatalf("CheckServerVersion(%q) = %v, want an error saying it is no version", tt.version, err)
				}
			default:
				if err != nil {
					t.Fatalf("CheckServerVersion(%q) = %v, want nil", tt.version, err)
				}
			}
		})
	}
}

// TestRequireServer: the server the tests run is new enough, and a closed
// connection has no version to check.
func TestRequireServer(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	nc, _ := natstest.Connect(t, s)
	if err := RequireServer(nc); err != nil {
		t.Fatalf("RequireServer on nats-server %s: %v", nc.ConnectedServerVersion(), err)
	}
	nc.Close()
	if err := RequireServer(nc); err != nil {
		t.Fatalf("RequireServer on a closed connection: %v", err)
	}
}

func TestPermanentStartError(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"nil", nil, false},
		{"partition count", fmt.Errorf("ensure: %w", &PartitionsMismatchError{Existing: 8, Requested: 16}), true},
		{"foreign stream", &StreamConflictError{Stream: TraceStream, Problem: "x"}, true},
		{"server too old", &ServerTooOldError{Found: "2.10.29", Need: MinServerVersion}, true},
		{"permissions", fmt.Errorf("%w: Permissions Violation for Publish to \"$JS.API.STREAM.INFO.X\"", nats.ErrPermissionViolation), true},
		{"authorization", nats.ErrAuthorization, true},
		{"JetStream off for the account", fmt.Errorf("look up: %w", jetstream.ErrJetStreamNotEnabledForAccount), true},
		{"replicas on a single server", &jetstream.APIError{Code: 500, ErrorCode: 10074}, true},
		{"subjects overlap", &jetstream.APIError{Code: 400, ErrorCode: 10065}, true},
		{"priority group dropped by an old server", fmt.Errorf("%w: priority group is not supported for this consumer", jetstream.ErrInvalidOption), true},

		{"timeout", context.DeadlineExceeded, false},
		{"nats timeout", nats.ErrTimeout, false},
		{"no responders", fmt.Errorf("look up: %w", nats.ErrNoResponders), false},
		{"no stream response", jetstream.ErrNoStreamResponse, false},
		{"no responders, as nats.go reports them for account info", jetstream.ErrJetStreamNotEnabled, false},
		{"connection closed", nats.ErrConnectionClosed, false},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{"leader election", &jetstream.APIError{Code: 503, ErrorCode: 10008}, false},
		{"no peers yet", &jetstream.APIError{Code: 400, ErrorCode: 10005}, false},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023}, false},
		{"stream not found", jetstream.ErrStreamNotFound, false},
		{"anything else", errors.New("stream LOGISTICS_TRACE: no leader with 3 replicas yet"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PermanentStartError(tt.err); got != tt.permanent {
				t.Fatalf("PermanentStartError(%v) = %v, want %v", tt.err, got, tt.permanent)
			}
		})
	}
}

// TestEnsureStreamsConflictsArePermanent: every stream in the way that
// waiting cannot move comes back from a real server as an error
// PermanentStartError recognises, saying what to do.
func TestEnsureStreamsConflictsArePermanent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		setup    func(ctx context.Context, js jetstream.JetStream) error
		cfg      StreamsConfig
		conflict string // the stream a *StreamConflictError names; "" for none
		says     []string
	}{
		{
			name: "limits stream named LOGISTICS_TRACE on logistics.trace.*",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: TraceStream, Subjects: []string{"logistics.trace.*"}})
				return err
			},
			conflict: TraceStream,
			says:     []string{"move it aside", "let pathupdate create it", "docs/scaling.md"},
		},
		{
			name: "another stream takes logistics.trace.*",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"logistics.>"}})
				return err
			},
			conflict: "EVENTS",
			says:     []string{"EVENTS", "logistics.trace.*", "move its events", "docs/scaling.md"},
		},
		{
			name: "LOGISTICS_TRACE with pathupdate's transform but limits retention",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				c := traceStreamConfig(StreamsConfig{}.WithDefaults())
				c.Retention = jetstream.LimitsPolicy
				_, err := js.CreateStream(ctx, c)
				return err
			},
			conflict: TraceStream,
			says:     []string{"retention", "move it aside"},
		},
		{
			name: "partition count differs",
			setup: func(ctx context.Context, js jetstream.JetStream) error {
				return EnsureStreams(ctx, js, StreamsConfig{Partitions: 4})
			},
			cfg:  StreamsConfig{Partitions: 8},
			says: []string{"4 partitions", "--partitions 4"},
		},
		{
			name: "replicas 3 on a single server",
			cfg:  StreamsConfig{Replicas: 3},
			says: []string{TraceStream},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, js := startJetStreamForTopology(t)
			ctx := jsTestCtx(t)
			if tt.setup != nil {
				if err := tt.setup(ctx, js); err != nil {
					t.Fatal(err)
				}
			}
			err := EnsureStreams(ctx, js, tt.cfg)
			if !PermanentStartError(err) {
				t.Fatalf("EnsureStreams: %v; want a permanent start error", err)
			}
			var conflict *StreamConflictError
			if got := errors.As(err, &conflict); got != (tt.conflict != "") || got && conflict.Stream != tt.conflict {
				t.Errorf("EnsureStreams: %#v, want a *StreamConflictError naming %q", err, tt.conflict)
			}
			for _, want := range tt.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %q", err, want)
				}
			}
		})
	}
}
