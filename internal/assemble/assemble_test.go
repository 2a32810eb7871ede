package assemble_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

var creds = pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: "wx1", AppSecret: "s"}}

// TestSettingsValidate: every part's problems come named by their path
// from Settings, and one API base is reported once.
func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		s      assemble.Settings
		fields []string
	}{
		{"defaults with credentials", assemble.Settings{Tokens: creds}, nil},
		{"no credentials", assemble.Settings{}, []string{"Tokens.AppID", "Tokens.AppSecret"}},
		{"a deliverer needs none", assemble.Settings{Deliverer: nopDeliverer{}}, nil},
		{"bad API base, once", assemble.Settings{Tokens: creds, Client: pathupdate.ClientConfig{APIBase: "api.example"}}, []string{"Tokens.APIBase"}},
		{"transport", assemble.Settings{Tokens: creds, Client: pathupdate.ClientConfig{Transport: "grpc"}}, []string{"Client.Transport"}},
		{"breaker", assemble.Settings{Tokens: creds, Worker: worker.Config{Breaker: retry.BreakerConfig{OpenInitial: time.Hour, OpenMax: time.Minute}}},
			[]string{"Worker.Breaker.OpenMax"}},
		{"consumer", assemble.Settings{Deliverer: nopDeliverer{}, Worker: worker.Config{Consumer: "a>b"}}, []string{"Worker.Consumer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.s.WithDefaults().Validate()
			var got []string
			for _, fe := range pathupdate.FieldErrorsOf(err) {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("Validate() = %v: fields %v, want %v", err, got, tt.fields)
			}
			if _, werr := assemble.Worker(nil, tt.s); tt.fields != nil && werr == nil {
				t.Fatal("Worker accepted settings Validate refused")
			}
		})
	}
}

// TestWorkerDelivers: a worker wired from settings delivers an event
// through its own client, naming itself in the User-Agent.
func TestWorkerDelivers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	defer sb.Close()
	w, err := assemble.Worker(js, assemble.Settings{
		Tokens:    pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: sandbox.DefaultAppID, AppSecret: sandbox.DefaultAppSecret}},
		Client:    pathupdate.ClientConfig{APIBase: sb.URL},
		UserAgent: "assemble-test/1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ev := pathupdate.Event{Token: "t", WaybillID: "W1", ActionTime: 1_767_225_600, ActionType: 100001, ActionMsg: "picked up"}
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for {
		if calls := sb.Calls("W1"); len(calls) > 0 {
			if calls[0].UserAgent != "assemble-test/1" {
				t.Fatalf("User-Agent %q", calls[0].UserAgent)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("not delivered in time")
		case <-time.After(20 * time.Millisecond): // the sandbox's record has no event to wait on
		}
	}
}

type nopDeliverer struct{}

func (nopDeliverer) UpdatePath(context.Context, pathupdate.Event) pathupdate.Outcome {
	return pathupdate.Outcome{Kind: pathupdate.Delivered}
}
