package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// The drain benchmarks measure the pipeline itself (scenario 2 of bench/):
// a backlog of b.N events over 1,000 waybills, published before the clock
// starts, drained by a worker whose API takes every event at once, against
// raw explicit-ack consumers (one per partition, Ack on receipt) of the
// same backlog on the same layout. Each op is one event; ev/s is reported.
// Run them together, e.g.
//
//	go test -run '^$' -bench 'Drain' -benchtime 100000x -cpuprofile cpu.out ./worker/

type instantAPI struct{}

func (instantAPI) UpdatePath(context.Context, pathupdate.Event) pathupdate.Outcome {
	return pathupdate.Outcome{Kind: pathupdate.Delivered}
}

// backlog starts a server with the streams and b.N events in the trace
// stream; a waybill's events are 1,000 stream positions apart.
func backlog(b *testing.B) jetstream.JetStream {
	b.Helper()
	s := natstest.Start(b)
	_, js := natstest.Connect(b, s)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		b.Fatal(err)
	}
	var in bytes.Buffer
	for i := range b.N {
		ev := pathupdate.Event{Token: "tok", WaybillID: fmt.Sprintf("BW%06d", i%1000), ActionTime: 1_767_225_600 + int64(i),
			ActionType: pathupdate.ActionInTransit, ActionMsg: fmt.Sprintf("step %d", i/1000)}
		in.Write(ev.Encode())
		in.WriteByte('\n')
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if sum, err := pub.PublishLines(ctx, &in, nil); err != nil || sum.Accepted != b.N {
		b.Fatalf("backlog: %+v %v", sum, err)
	}
	return js
}

// waitDrained polls until the work-queue stream is empty: every ack done.
func waitDrained(b *testing.B, js jetstream.JetStream) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		b.Fatal(err)
	}
	for {
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond) // no event to wait on
	}
}

func BenchmarkDrainWorker(b *testing.B) {
	js := backlog(b)
	w, err := worker.New(js, instantAPI{}, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	waitDrained(b, js)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ev/s")
	if err := w.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := w.Stats().Delivered; got != uint64(b.N) {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}

func BenchmarkDrainRawConsume(b *testing.B) {
	js := backlog(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for p := range pathupdate.DefaultPartitions {
		cons, err := js.CreateOrUpdateConsumer(ctx, pathupdate.TraceStream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("raw-p%d", p), FilterSubject: pathupdate.PartitionFilter(p),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: worker.MaxInFlightDefault,
		})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack() })
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
	}
	waitDrained(b, js)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ev/s")
}
