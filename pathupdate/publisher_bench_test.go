package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchWaybills is how many waybills the publish benchmarks spread their
// events over.
const benchWaybills = 1000

// benchEvents is event i of a publish benchmark's b.N: interleaved input
// gives consecutive events to different waybills (a waybill's next event
// comes benchWaybills lines later); adjacent input gives each waybill a run
// of consecutive lines, as a per-parcel export does.
func benchEvents(n int, adjacent bool) []Event {
	perWaybill := max(n/benchWaybills, 1)
	evs := make([]Event, n)
	for i := range evs {
		w := i % benchWaybills
		if adjacent {
			w = i / perWaybill
		}
		evs[i] = publisherTestEvent(fmt.Sprintf("W%d", w), i)
	}
	return evs
}

// BenchmarkPublishLines is PublishLines of b.N lines, interleaved and
// adjacent; BenchmarkRawPublishAsync is its reference.
func BenchmarkPublishLines(b *testing.B) {
	for _, adjacent := range []bool{false, true} {
		name := map[bool]string{false: "interleaved", true: "adjacent"}[adjacent]
		b.Run(name, func(b *testing.B) {
			js, p := publisherSetup(b, PublisherConfig{})
			var in strings.Builder
			for _, ev := range benchEvents(b.N, adjacent) {
				in.Write(ev.Encode())
				in.WriteByte('\n')
			}
			b.ReportAllocs()
			cpu := processCPU(b)
			b.ResetTimer()
			sum, err := p.PublishLines(context.Background(), strings.NewReader(in.String()), nil)
			b.StopTimer()
			cpu.report(b)
			if err != nil || sum.Accepted != b.N {
				b.Fatalf("summary %+v, err %v", sum, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if got := traceMsgs(b, js); got != uint64(b.N) {
				b.Fatalf("stream holds %d of %d", got, b.N)
			}
		})
	}
}

// BenchmarkRawPublishAsync is the reference of BenchmarkPublishLines: the
// same events (same bytes, same subjects) sent with raw jetstream
// PublishAsync to the same stream config, then every PubAck awaited;
// same_headers also sends the Nats-Msg-Id and expected-stream headers the
// publisher sends (precomputed), so the server does the same dedup work.
// The harness in bench/ (scenario 1) does the same with repetitions.
func BenchmarkRawPublishAsync(b *testing.B) {
	for _, headers := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "same_headers"}[headers]
		b.Run(name, func(b *testing.B) {
			evs := benchEvents(b.N, false)
			subjects, data, ids := make([]string, b.N), make([][]byte, b.N), make([]string, b.N)
			for i, ev := range evs {
				subjects[i], data[i], ids[i] = TraceSubject(ev.WaybillID), ev.Encode(), ev.ID()
			}
			js, _ := publisherSetup(b, PublisherConfig{})
			b.ReportAllocs()
			cpu := processCPU(b)
			b.ResetTimer()
			for i := range b.N {
				for {
					var err error
					if headers {
						_, err = js.PublishMsgAsync(&nats.Msg{Subject: subjects[i], Data: data[i]},
							jetstream.WithMsgID(ids[i]), jetstream.WithExpectStream(TraceStream))
					} else {
						_, err = js.PublishAsync(subjects[i], data[i])
					}
					if err == nil {
						break
					}
					// A stall past the handle's wait on a busy machine: try again.
					if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
						b.Fatal(err)
					}
				}
			}
			<-js.PublishAsyncComplete()
			b.StopTimer()
			cpu.report(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if got := traceMsgs(b, js); got != uint64(b.N) {
				b.Fatalf("stream holds %d of %d", got, b.N)
			}
		})
	}
}

// BenchmarkEventEncode is the canonical encoding the publisher and the
// client send (json.Marshal of the event).
func BenchmarkEventEncode(b *testing.B) {
	ev := publisherTestEvent("BW000001", 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = ev.Encode()
	}
}
