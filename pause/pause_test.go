package pause_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
)

const partitions = 4

// setup starts JetStream with the streams and returns the target of
// prefix, with the consumers of the partitions listed created as a
// worker creates them (the unpartitioned one too).
func setup(t *testing.T, prefix string, created ...int) (*nats.Conn, jetstream.JetStream, pause.Target) {
	t.Helper()
	nc, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	tg, err := pause.TargetOf(ctx, js, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range created {
		createConsumer(t, js, pathupdate.PartitionConsumer(prefix, p), pathupdate.PartitionFilter(p), nil)
	}
	createConsumer(t, js, pathupdate.UnpartitionedConsumer(prefix), pathupdate.UnpartitionedFilter, nil)
	return nc, js, tg
}

func createConsumer(t *testing.T, js jetstream.JetStream, name, filter string, until *time.Time) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(context.Background(), pathupdate.TraceStream, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: until,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

func consumerInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), pathupdate.TraceStream, name)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

func TestPauseUntilResumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js, tg := setup(t, "pz", 0, 1)

	st, err := pause.Read(ctx, js, tg)
	if err != nil || st.Paused || st.String() != "not paused" {
		t.Fatalf("before: %+v, %v; want not paused (no bucket yet)", st, err)
	}
	st, err = pause.Pause(ctx, js, tg, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || !st.UntilResumed || !st.Until.IsZero() || st.Since.IsZero() || st.String() != "paused until resumed" {
		t.Fatalf("after Pause: %+v (%s)", st, st)
	}
	if got, want := len(st.Consumers), partitions+1; got != want {
		t.Fatalf("%d consumers in the state, want %d", got, want)
	}
	if st.Missing() != 2 || len(st.Disagreeing()) != 0 {
		t.Fatalf("missing %d (want 2), disagreeing %+v (want none)", st.Missing(), st.Disagreeing())
	}
	for _, c := range st.Consumers {
		if c.Exists && (!c.Paused || !c.UntilResumed) {
			t.Fatalf("consumer %+v: want paused until resumed", c)
		}
	}

	// A worker creating a consumer later creates it paused, from the record.
	r, err := pause.Load(ctx, js, tg)
	if err != nil {
		t.Fatal(err)
	}
	info := createConsumer(t, js, pathupdate.PartitionConsumer("pz", 2), pathupdate.PartitionFilter(2), r.ConsumerPauseUntil(time.Now()))
	if !info.Paused {
		t.Fatalf("consumer created with the record's PauseUntil is not paused: %+v", info.Config.PauseUntil)
	}
	// A worker restarting updates its consumer with no PauseUntil: the
	// server keeps the pause.
	if info := createConsumer(t, js, pathupdate.PartitionConsumer("pz", 0), pathupdate.PartitionFilter(0), nil); !info.Paused {
		t.Fatal("CreateOrUpdateConsumer without PauseUntil lifted the pause")
	}

	st, err = pause.Resume(ctx, js, tg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Paused || len(st.Disagreeing()) != 0 {
		t.Fatalf("after Resume: %+v", st)
	}
	for _, c := range st.Consumers {
		if c.Paused {
			t.Fatalf("consumer %s still paused after Resume", c.Name)
		}
	}
	if r, err := pause.Load(ctx, js, tg); err != nil || r.Active(time.Now()) {
		t.Fatalf("record after Resume: %+v, %v", r, err)
	}
}

// TestPauseUntilEndsByItself pauses until a moment soon and waits for
// the server's advisory that the consumer resumed.
func TestPauseUntilEndsByItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js, tg := setup(t, "pu", 0)
	name := pathupdate.PartitionConsumer("pu", 0)
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.PAUSE." + pathupdate.TraceStream + "." + name)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Second).Truncate(time.Millisecond)
	st, err := pause.Pause(ctx, js, tg, until)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.UntilResumed || !st.Until.Equal(until) {
		t.Fatalf("after Pause: %+v, want paused until %s", st, until)
	}
	if c := st.Consumers[0]; !c.Paused || !c.Until.Equal(until) || !c.Agrees {
		t.Fatalf("consumer: %+v", c)
	}
	for {
		m, err := adv.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no advisory of the consumer resuming: %v", err)
		}
		var a struct {
			Paused bool `json:"paused"`
		}
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		if !a.Paused {
			break
		}
	}
	if time.Now().Before(until) {
		t.Fatal("resumed before its time")
	}
	st, err = pause.Read(ctx, js, tg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Paused || st.Consumers[0].Paused || len(st.Disagreeing()) != 0 {
		t.Fatalf("after its time: %+v", st)
	}
}

func TestPauseRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js, tg := setup(t, "pr")
	_, err := pause.Pause(ctx, js, tg, time.Now().Add(-time.Minute))
	if !errors.Is(err, pause.ErrUntilPast) {
		t.Fatalf("until a minute ago: %v, want ErrUntilPast", err)
	}
	for _, bad := range []pause.Target{{Consumer: "", Partitions: 1}, {Consumer: "a.b", Partitions: 1}, {Consumer: "ok", Partitions: 0}} {
		if _, err := pause.Pause(ctx, js, bad, time.Time{}); err == nil {
			t.Fatalf("Pause(%+v) succeeded", bad)
		}
	}
}

// TestDisagreeing: a pause made by hand is reported, and Apply puts it
// right.
func TestDisagreeing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js, tg := setup(t, "pd", 0, 1)
	name := pathupdate.PartitionConsumer("pd", 1)
	if _, err := js.PauseConsumer(ctx, pathupdate.TraceStream, name, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st, err := pause.Read(ctx, js, tg)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Disagreeing(); st.Paused || len(d) != 1 || d[0].Name != name || !d[0].Paused {
		t.Fatalf("state %+v; want not paused, %s disagreeing", st, name)
	}
	if err := pause.ApplyAll(ctx, js, tg, pause.Record{}); err != nil {
		t.Fatal(err)
	}
	if info := consumerInfo(t, js, name); info.Paused {
		t.Fatal("ApplyAll of no pause left the consumer paused")
	}
}

// TestWatch: a watcher sees the record now and each change.
func TestWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js, tg := setup(t, "pw")
	got := make(chan pause.Record, 10)
	w, err := pause.Watch(ctx, js, tg, func(r pause.Record) { got <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func(what string) pause.Record {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher: no record %s", what)
		}
		return pause.Record{}
	}
	if r := next("at start"); r.Active(time.Now()) {
		t.Fatalf("at start: %+v", r)
	}
	until := time.Now().Add(time.Hour)
	if _, err := pause.Pause(ctx, js, tg, until); err != nil {
		t.Fatal(err)
	}
	if r := next("after Pause"); !r.Active(time.Now()) || !r.Until.Equal(until.UTC()) {
		t.Fatalf("after Pause: %+v", r)
	}
	if _, err := pause.Resume(ctx, js, tg); err != nil {
		t.Fatal(err)
	}
	if r := next("after Resume"); r.Active(time.Now()) {
		t.Fatalf("after Resume: %+v", r)
	}
	w.Stop()
	w.Stop()
}
