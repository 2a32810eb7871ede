package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestKeep: of a real delivery the worker keeps its ack subject, its
// bytes and only the headers it reads later (trace context, replays),
// none when the event carries only the publish headers.
func TestKeep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name    string
		headers map[string]string // besides Nats-Msg-Id and Nats-Expected-Stream
		want    map[string]string // kept
	}{
		{"publish headers only", nil, nil},
		{"trace context and replays", map[string]string{
			pathupdate.TraceParentHeader: parent, pathupdate.TraceStateHeader: "k=v", deadletter.ReplaysHeader: "2", "X-Other": "dropped"},
			map[string]string{pathupdate.TraceParentHeader: parent, pathupdate.TraceStateHeader: "k=v", deadletter.ReplaysHeader: "2"}},
	}
	for i, tc := range tests {
		ev := pathupdate.Event{Token: "tok", WaybillID: "KEEP" + string(rune('A'+i)), ActionTime: 1_767_225_600,
			ActionType: pathupdate.ActionInTransit, ActionMsg: tc.name}
		m := &nats.Msg{Subject: pathupdate.TraceSubject(ev.WaybillID), Data: ev.Encode(), Header: nats.Header{}}
		for k, v := range tc.headers {
			m.Header.Set(k, v)
		}
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.ID()), jetstream.WithExpectStream(pathupdate.TraceStream)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := keep(msg)
		if k.Reply() != msg.Reply() || string(k.Data()) != string(msg.Data()) {
			t.Errorf("%s: kept reply %q and data %q, want the delivery's", tc.name, k.Reply(), k.Data())
		}
		if len(k.Headers()) != len(tc.want) {
			t.Errorf("%s: kept headers %v, want %v", tc.name, k.Headers(), tc.want)
		}
		for name, v := range tc.want {
			if got := k.Headers().Get(name); got != v {
				t.Errorf("%s: kept %s = %q, want %q", tc.name, name, got, v)
			}
		}
	}
}
