package console

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// benchDeadLetters is how many dead letters the page benchmarks hold.
const benchDeadLetters = 100_000

// fillDeadLetters writes n dead letters over n/10 waybills: by i mod 4 a
// 40199, a 9300507, a retries_exhausted -1 and an invalid_event.
func fillDeadLetters(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	base := time.Now().Add(-24 * time.Hour)
	for i := range n {
		r := deadletter.Record{
			WaybillID: fmt.Sprintf("W%06d", i%(n/10)), Attempts: 1,
			OriginalSeq: uint64(i + 1), FailedAt: base.Add(time.Duration(i) * time.Millisecond),
		}
		r.OriginalSubject = "0.logistics.trace." + r.WaybillID
		r.Event = fmt.Appendf(nil, `{"token":"tok","waybill_id":%q,"action_time":%d,"action_type":200001,"action_msg":"step %d"}`, r.WaybillID, 1_767_225_600+i, i)
		switch i % 4 {
		case 0:
			r.Reason, r.ErrCode, r.ErrMsg = deadletter.ReasonRejected, pathupdate.ErrcodeWaybillNotFound, "waybill not found"
		case 1:
			r.Reason, r.ErrCode, r.ErrMsg = deadletter.ReasonRejected, pathupdate.ErrcodeIncorrectToken, "incorrect token"
		case 2:
			r.Reason, r.ErrCode, r.ErrMsg = deadletter.ReasonRetriesExhausted, pathupdate.ErrcodeSystemError, "system error"
		default:
			r.Reason, r.ErrMsg = deadletter.ReasonInvalidEvent, "invalid event: action_msg is empty"
		}
		if _, err := js.PublishMsgAsync(r.Msg()); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 || i == n-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("async publishes not acknowledged")
			}
		}
	}
}

// BenchmarkPages times the pages an operator opens most, answered by the
// console over HTTP with 100,000 dead letters in the stream and a worker
// holding the default 8 partitions (the target: each under 300 ms on this
// machine; docs/console.md has the figures). The index's first read of
// the stream is reported once as index-build-ms.
//
//	go test ./internal/console -run '^$' -bench Pages -benchtime 20x
func BenchmarkPages(b *testing.B) {
	e := newEnv(b, envOptions{})
	fillDeadLetters(b, e.js, benchDeadLetters)
	start := time.Now()
	if err := e.console.index.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	if got := e.console.index.Page(deadletter.Filter{}, 0).Stats.Total; got != benchDeadLetters {
		b.Fatalf("index holds %d dead letters, want %d", got, benchDeadLetters)
	}
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"deadletters-first", "/deadletters"},
		{"deadletters-errcode", "/deadletters?errcode=9300507"},
		{"deadletters-deep", fmt.Sprintf("/deadletters?from=%d", benchDeadLetters-500)},
		{"deadletter-one", fmt.Sprintf("/deadletters/%d", benchDeadLetters/2)},
		{"waybill", "/waybill?id=W000042"},
	}
	hc := &http.Client{Timeout: time.Minute}
	for _, pg := range pages {
		b.Run(pg.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := hc.Get(e.srv.URL + pg.path)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", pg.path, resp.StatusCode)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			b.ReportMetric(float64(build.Milliseconds()), "index-build-ms")
		})
	}
}
