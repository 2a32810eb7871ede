package natsserver_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/internal/natsserver"
)

// TestOptionsEscapeHatch: Config.Options reaches the nats-server options,
// here to require a user and password.
func TestOptionsEscapeHatch(t *testing.T) {
	t.Parallel()
	called := false
	s, err := natsserver.Start(ctxFor(t), natsserver.Config{Port: natsserver.RandomPort, StoreDir: t.TempDir(),
		Options: func(o *server.Options) {
			called = true
			if !o.JetStream || o.StoreDir == "" || o.Port != natsserver.RandomPort {
				t.Errorf("Options sees %+v: not the options built from Config", *o)
			}
			o.Username, o.Password = "svc", "s3cret-pass"
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	if !called {
		t.Fatal("Config.Options was not called")
	}

	for _, tt := range []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{"no credentials", nil, false},
		{"wrong password", []nats.Option{nats.UserInfo("svc", "wrong")}, false},
		{"right credentials", []nats.Option{nats.UserInfo("svc", "s3cret-pass")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.ClientURL(), tt.opts...)
			if err == nil {
				nc.Close()
			}
			if tt.ok != (err == nil) {
				t.Fatalf("TCP connect: %v, want success %v", err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("TCP connect: %v, want nats.ErrAuthorization", err)
			}
			if !tt.ok {
				return // an in-process client refused hangs on its pipe for 10 s in nats.go: TCP shows it
			}
			nc, err = s.Connect(tt.opts...)
			if err != nil {
				t.Fatalf("in-process connect: %v", err)
			}
			nc.Close()
		})
	}
}
