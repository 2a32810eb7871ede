package pathupdate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkRawPublishAsync is the reference of BenchmarkPublishLines: the
// same events (same bytes, same subjects) sent with raw jetstream
// PublishAsync to the same stream config, then every PubAck awaited. The
// events/s of the two, run together, give the publisher's own cost; the
// harness in bench/ (scenario 1) does the same with repetitions.
func BenchmarkRawPublishAsync(b *testing.B) {
	subjects, data := make([]string, b.N), make([][]byte, b.N)
	for i := range b.N {
		ev := publisherTestEvent(fmt.Sprintf("W%d", i%1000), i)
		subjects[i], data[i] = TraceSubject(ev.WaybillID), ev.Encode()
	}
	js, _ := publisherSetup(b, PublisherConfig{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for {
			_, err := js.PublishAsync(subjects[i], data[i])
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if got := traceMsgs(b, js); got != uint64(b.N) {
		b.Fatalf("stream holds %d of %d", got, b.N)
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
