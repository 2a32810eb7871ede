package pathupdate

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestTopologyEnsureStreamsDoesNotRewriteAnUnchangedStream: a worker
// starting against streams that already hold its settings sends no stream
// update. Found by the chaos suite: workers starting side by side each
// rewrote the config, and nats-server 2.15.2 reads a file store's config
// without its lock while another worker creates a consumer, a data race
// that failed -race runs. A setting that differs is still written.
func TestTopologyEnsureStreamsDoesNotRewriteAnUnchangedStream(t *testing.T) {
	t.Parallel()
	s, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)

	// The server's JetStream API is plain subjects: a second connection
	// sees every stream update request.
	spy, err := s.Connect(nats.Name("update spy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Close)
	var updates atomic.Int64
	if _, err := spy.Subscribe("$JS.API.STREAM.UPDATE.*", func(*nats.Msg) { updates.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	counted := func() int64 {
		t.Helper()
		// A round trip on the spy's connection after the update requests
		// were answered makes sure it has seen them.
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		return updates.Swap(0)
	}

	for _, cfg := range []StreamsConfig{{}, {Replicas: 1, Partitions: DefaultPartitions, MaxBytes: -1, Duplicates: DefaultDuplicates}} {
		if err := EnsureStreams(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if n := counted(); n != 0 {
		t.Fatalf("creating the streams and ensuring them again with the same settings sent %d stream updates, want 0", n)
	}
	if err := EnsureStreams(ctx, js, StreamsConfig{MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if n := counted(); n != 1 {
		t.Fatalf("changing the trace stream's MaxBytes sent %d stream updates, want 1", n)
	}
	if got := storedStreamConfig(t, ctx, js, TraceStream).MaxBytes; got != 1<<20 {
		t.Fatalf("MaxBytes after the update: %d", got)
	}
	if err := EnsureStreams(ctx, js, StreamsConfig{MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if n := counted(); n != 0 {
		t.Fatalf("ensuring the changed settings again sent %d stream updates, want 0", n)
	}
}
