package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
)

// TestPauseOnCluster pauses and resumes R3 consumers on a 3-node cluster,
// where the server answers a pause before its replicas applied it: the
// State Pause and Resume return already agrees.
func TestPauseOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := natstest.NewCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Replicas: 3, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	tg, err := pause.TargetOf(ctx, js, "pc")
	if err != nil {
		t.Fatal(err)
	}
	for p := range tg.Partitions {
		createConsumer(t, js, pathupdate.PartitionConsumer("pc", p), pathupdate.PartitionFilter(p), nil)
	}
	createConsumer(t, js, pathupdate.UnpartitionedConsumer("pc"), pathupdate.UnpartitionedFilter, nil)

	st, err := pause.Pause(ctx, js, tg, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || st.Missing() != 0 || len(st.Disagreeing()) != 0 {
		t.Fatalf("after Pause: %+v", st)
	}
	kv, err := js.KeyValue(ctx, pause.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := kv.Status(ctx); err != nil || s.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("bucket %s: %v, want 3 replicas like the trace stream", pause.Bucket, err)
	}
	st, err = pause.Resume(ctx, js, tg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Paused || len(st.Disagreeing()) != 0 {
		t.Fatalf("after Resume: %+v", st)
	}
}
