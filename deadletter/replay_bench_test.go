package deadletter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// The size of BenchmarkReplay: a backlog of dead letters, ten per
// waybill, as an outage of one cause (unknown orders, say) leaves.
const (
	benchReplayRecords  = 20_000
	benchReplayWaybills = 2_000
)

// BenchmarkReplay replays benchReplayRecords dead letters of
// benchReplayWaybills waybills, written interleaved (step j of every
// waybill before step j+1 of any, as failures arrive) with the default
// StoreConfig; each iteration writes them again first, untimed. No worker
// runs: the trace stream is only written to.
//
//	go test -run '^$' -bench Replay -benchtime 5x ./deadletter/
func BenchmarkReplay(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx := context.Background()
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		b.Fatal(err)
	}
	store, err := deadletter.NewStore(js, deadletter.StoreConfig{})
	if err != nil {
		b.Fatal(err)
	}
	trace, err := js.Stream(ctx, pathupdate.TraceStream)
	if err != nil {
		b.Fatal(err)
	}
	var originalSeq uint64 // a new one per record: the dead-letter stream dedups on it
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := trace.Purge(ctx); err != nil {
			b.Fatal(err)
		}
		writeBacklog(ctx, b, js, &originalSeq)
		b.StartTimer()
		res, err := store.Replay(ctx, deadletter.Filter{}, deadletter.ReplayOptions{})
		b.StopTimer()
		if err != nil || res.Replayed != benchReplayRecords {
			b.Fatalf("replay: %+v, %v", res, err)
		}
		info, err := trace.Info(ctx)
		if err != nil || info.State.Msgs != benchReplayRecords {
			b.Fatalf("trace stream: %v, %v; want %d messages", info, err, benchReplayRecords)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*benchReplayRecords)/b.Elapsed().Seconds(), "records/s")
}

// writeBacklog writes the dead letters BenchmarkReplay replays, with raw
// async publishes (the Writer would wait for each PubAck).
func writeBacklog(ctx context.Context, b *testing.B, js jetstream.JetStream, originalSeq *uint64) {
	b.Helper()
	perWaybill := benchReplayRecords / benchReplayWaybills
	failed := time.Now()
	for j := range perWaybill {
		for w := range benchReplayWaybills {
			waybill := fmt.Sprintf("R%04d", w)
			*originalSeq++
			ev := pathupdate.Event{Token: "tok", WaybillID: waybill, ActionTime: 1_767_225_600 + int64(j),
				ActionType: pathupdate.ActionInTransit, ActionMsg: fmt.Sprintf("%s step %d", waybill, j)}
			r := deadletter.Record{Event: ev.Encode(), WaybillID: waybill, Reason: deadletter.ReasonRejected,
				ErrCode: pathupdate.ErrcodeWaybillNotFound, ErrMsg: "waybill not found", Attempts: 1,
				OriginalSubject: "0.logistics.trace." + waybill, OriginalSeq: *originalSeq, FailedAt: failed}
			if _, err := js.PublishMsgAsync(r.Msg(), jetstream.WithExpectStream(pathupdate.DeadLetterStream)); err != nil {
				b.Fatal(err)
			}
		}
		select { // a round of every waybill at a time: within the handle's async limit
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
	dl, err := js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		b.Fatal(err)
	}
	if n := dl.CachedInfo().State.Msgs; n != benchReplayRecords {
		b.Fatalf("%d dead letters written, want %d", n, benchReplayRecords)
	}
}
