package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

// startJetStreamForTopology runs a real embedded JetStream server (random
// port, temp store) and connects to it.
func startJetStreamForTopology(t testing.TB) (*natsserver.Server, jetstream.JetStream) {
	t.Helper()
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	return s, js
}

func jsTestCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serverPartition is the server's partition function (FNV-32a of the token
// modulo the count), written out so a test notices if the layout changes.
func serverPartition(waybill string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(waybill))
	return int(h.Sum32() % uint32(partitions))
}

func storedStreamConfig(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

func TestTopologyEnsureStreamsCreatesBothIdempotently(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)

	for i := range 2 {
		if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
			t.Fatalf("EnsureStreams #%d: %v", i+1, err)
		}
	}

	tr := storedStreamConfig(t, ctx, js, TraceStream)
	if got, want := strings.Join(tr.Subjects, ","), "logistics.trace.*"; got != want {
		t.Errorf("trace subjects = %q, want %q", got, want)
	}
	if tr.SubjectTransform == nil || tr.SubjectTransform.Source != "logistics.trace.*" ||
		tr.SubjectTransform.Destination != "{{partition(8,1)}}.logistics.trace.{{wildcard(1)}}" {
		t.Errorf("trace transform = %+v", tr.SubjectTransform)
	}
	checkCommon := func(name string, c jetstream.StreamConfig, retention jetstream.RetentionPolicy) {
		t.Helper()
		if c.Retention != retention || c.Discard != jetstream.DiscardNew || !c.AllowDirect ||
			c.Duplicates != DefaultDuplicates || c.Replicas != 1 || c.Storage != jetstream.FileStorage ||
			c.MaxBytes != -1 || c.MaxAge != 0 {
			t.Errorf("%s config = %+v", name, c)
		}
	}
	checkCommon(TraceStream, tr, jetstream.WorkQueuePolicy)
	dl := storedStreamConfig(t, ctx, js, DeadLetterStream)
	checkCommon(DeadLetterStream, dl, jetstream.LimitsPolicy)
	if got, want := strings.Join(dl.Subjects, ","), "logistics.deadletter.*"; got != want {
		t.Errorf("dead-letter subjects = %q, want %q", got, want)
	}
	if dl.AllowRollup || dl.DenyDelete || dl.DenyPurge {
		t.Errorf("dead-letter stream must allow single deletes and no rollup: %+v", dl)
	}
}

func TestTopologyEnsureStreamsConcurrentStarts(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() { errs <- EnsureStreams(ctx, js, StreamsConfig{}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent EnsureStreams: %v", err)
		}
	}
}

func TestTopologyEnsureStreamsUpdatesLimits(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}

	want := StreamsConfig{
		MaxAge: 72 * time.Hour, MaxBytes: 1 << 30, Duplicates: time.Minute,
		DeadLetterMaxAge: 30 * 24 * time.Hour, DeadLetterMaxBytes: 1 << 28,
	}
	if err := EnsureStreams(ctx, js, want); err != nil {
		t.Fatalf("update: %v", err)
	}
	tr := storedStreamConfig(t, ctx, js, TraceStream)
	if tr.MaxAge != want.MaxAge || tr.MaxBytes != want.MaxBytes || tr.Duplicates != want.Duplicates {
		t.Errorf("trace after update: max_age %s max_bytes %d duplicates %s", tr.MaxAge, tr.MaxBytes, tr.Duplicates)
	}
	dl := storedStreamConfig(t, ctx, js, DeadLetterStream)
	if dl.MaxAge != want.DeadLetterMaxAge || dl.MaxBytes != want.DeadLetterMaxBytes || dl.Duplicates != want.Duplicates {
		t.Errorf("dead letter after update: max_age %s max_bytes %d duplicates %s", dl.MaxAge, dl.MaxBytes, dl.Duplicates)
	}

	// Back to the defaults: "unlimited" must be restorable too.
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if tr := storedStreamConfig(t, ctx, js, TraceStream); tr.MaxAge != 0 || tr.MaxBytes != -1 {
		t.Errorf("trace after reset: max_age %s max_bytes %d", tr.MaxAge, tr.MaxBytes)
	}
}

func TestTopologyEnsureStreamsRefusesWhatTheServerCannotDo(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}

	err := EnsureStreams(ctx, js, StreamsConfig{Replicas: 3})
	if err == nil || !strings.Contains(err.Error(), TraceStream) {
		t.Errorf("replicas 3 on a single server: err = %v, want an error naming the stream", err)
	}
	err = EnsureStreams(ctx, js, StreamsConfig{Storage: jetstream.MemoryStorage})
	if err == nil || !strings.Contains(err.Error(), TraceStream) {
		t.Errorf("storage change: err = %v, want an error naming the stream", err)
	}
}

func TestTopologyEnsureStreamsChangesReplicasOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	nodes := natstest.StartCluster(t, 3)
	_, js := natstest.Connect(t, nodes[0])
	ctx := jsTestCtx(t)

	if err := EnsureStreams(ctx, js, StreamsConfig{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, StreamsConfig{Replicas: 3}); err != nil {
		t.Fatalf("R1 -> R3: %v", err)
	}
	for _, name := range []string{TraceStream, DeadLetterStream} {
		if c := storedStreamConfig(t, ctx, js, name); c.Replicas != 3 {
			t.Errorf("%s has %d replicas, want 3", name, c.Replicas)
		}
	}
	// EnsureStreams returned, so the streams have leaders and take a
	// publish. (No timing is asserted: a loaded machine is slow.)
	pubCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.Publish(pubCtx, TraceSubject("W1"), []byte("x")); err != nil {
		t.Fatalf("publish right after the update: %v", err)
	}
}

func TestTopologyPartitionMismatch(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if err := EnsureStreams(ctx, js, StreamsConfig{Partitions: 8}); err != nil {
		t.Fatal(err)
	}

	err := EnsureStreams(ctx, js, StreamsConfig{Partitions: 16})
	var mm *PartitionsMismatchError
	if !errors.As(err, &mm) || mm.Existing != 8 || mm.Requested != 16 {
		t.Fatalf("err = %v, want *PartitionsMismatchError{8, 16}", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "8 partitions") || !strings.Contains(msg, "16 requested") {
		t.Errorf("message %q does not name both counts", msg)
	}
	if tr := storedStreamConfig(t, ctx, js, TraceStream); !strings.Contains(tr.SubjectTransform.Destination, "partition(8,1)") {
		t.Errorf("refused update changed the stream: %q", tr.SubjectTransform.Destination)
	}
	if n, err := TracePartitions(ctx, js); err != nil || n != 8 {
		t.Errorf("TracePartitions = %d, %v; want 8", n, err)
	}
}

func TestTopologyRefusesForeignTraceStream(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: TraceStream, Subjects: []string{"logistics.trace.*"}}); err != nil {
		t.Fatal(err)
	}
	err := EnsureStreams(ctx, js, StreamsConfig{})
	if err == nil || !strings.Contains(err.Error(), "subject transform") {
		t.Fatalf("err = %v, want a refusal naming the subject transform", err)
	}
	if tr := storedStreamConfig(t, ctx, js, TraceStream); tr.SubjectTransform != nil {
		t.Errorf("foreign stream was modified: %+v", tr.SubjectTransform)
	}
}

func TestTopologyTransformKeepsWaybillsOnOnePartition(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	const partitions = 8
	if err := EnsureStreams(ctx, js, StreamsConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}

	waybills := []string{"W1", "W2", "SF1234567890", "a-b_c", "0", "7", "ZZ"}
	const rounds = 3
	for r := range rounds {
		for _, w := range waybills {
			if _, err := js.Publish(ctx, TraceSubject(w), fmt.Appendf(nil, "%s/%d", w, r)); err != nil {
				t.Fatalf("publish %s: %v", w, err)
			}
		}
	}

	st, err := js.Stream(ctx, TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	perPartition := make(map[int]int)
	for seq := uint64(1); seq <= uint64(rounds*len(waybills)); seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		w := strings.SplitN(string(m.Data), "/", 2)[0]
		p := serverPartition(w, partitions)
		if want := fmt.Sprintf("%d.logistics.trace.%s", p, w); m.Subject != want {
			t.Errorf("seq %d stored on %q, want %q", seq, m.Subject, want)
		}
		if got := StoredTraceSubject(w, partitions); got != m.Subject {
			t.Errorf("StoredTraceSubject(%q, %d) = %q, the server stored %q", w, partitions, got, m.Subject)
		}
		if got := WaybillFromSubject(m.Subject); got != w {
			t.Errorf("WaybillFromSubject(%q) = %q, want %q", m.Subject, got, w)
		}
		perPartition[p]++
	}

	// Each partition's filter sees exactly that partition's messages.
	for p := range partitions {
		c, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubject: PartitionFilter(p)})
		if err != nil {
			t.Fatalf("consumer for %q: %v", PartitionFilter(p), err)
		}
		if got := c.CachedInfo().NumPending; got != uint64(perPartition[p]) {
			t.Errorf("partition %d: consumer sees %d pending, want %d", p, got, perPartition[p])
		}
	}

	// A stored subject is not a publish subject: nothing captures it, so
	// nobody can write into a partition directly.
	if _, err := js.Publish(ctx, fmt.Sprintf("%d.logistics.trace.W1", serverPartition("W1", partitions)), []byte("x")); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("publish to a stored subject: err = %v, want ErrNoStreamResponse", err)
	}
}

func TestTopologyFullTraceStreamRefusesPublishes(t *testing.T) {
	t.Parallel()
	_, js := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if err := EnsureStreams(ctx, js, StreamsConfig{MaxBytes: 4096}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 512)
	var stored uint64
	var refused error
	for i := range 100 {
		ack, err := js.Publish(ctx, TraceSubject(fmt.Sprintf("W%d", i)), payload)
		if err != nil {
			refused = err
			break
		}
		stored = ack.Sequence
	}
	if refused == nil {
		t.Fatal("a full stream accepted every publish")
	}
	st, err := js.Stream(ctx, TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != 1 || info.State.Msgs != stored {
		t.Errorf("full stream dropped events: first seq %d, %d msgs, %d acknowledged (refused with %v)",
			info.State.FirstSeq, info.State.Msgs, stored, refused)
	}
}

func TestTopologyStreamsConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   StreamsConfig
		field string // "" = valid
	}{
		{"defaults", StreamsConfig{}, ""},
		{"cluster", StreamsConfig{Replicas: 3, Partitions: 64, MaxAge: time.Hour, MaxBytes: 1 << 20}, ""},
		{"replicas", StreamsConfig{Replicas: 6}, "Replicas"},
		{"negative replicas", StreamsConfig{Replicas: -1}, "Replicas"},
		{"partitions", StreamsConfig{Partitions: MaxPartitions + 1}, "Partitions"},
		{"max age", StreamsConfig{MaxAge: -time.Second}, "MaxAge"},
		{"max bytes", StreamsConfig{MaxBytes: -2}, "MaxBytes"},
		{"duplicates", StreamsConfig{Duplicates: -time.Second}, "Duplicates"},
		{"duplicates beyond max age", StreamsConfig{MaxAge: time.Minute}, "Duplicates"},
		{"duplicates beyond dead-letter max age", StreamsConfig{DeadLetterMaxAge: time.Minute}, "Duplicates"},
		{"dead-letter max age", StreamsConfig{DeadLetterMaxAge: -1}, "DeadLetterMaxAge"},
		{"dead-letter max bytes", StreamsConfig{DeadLetterMaxBytes: -5}, "DeadLetterMaxBytes"},
		{"storage", StreamsConfig{Storage: 7}, "Storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), "StreamsConfig."+tt.field)):
				t.Errorf("Validate() = %v, want an error naming StreamsConfig.%s", err, tt.field)
			}
		})
	}
}

func TestTopologySubjects(t *testing.T) {
	t.Parallel()
	if got := TraceSubject("W1"); got != "logistics.trace.W1" {
		t.Errorf("TraceSubject = %q", got)
	}
	if got := DeadLetterSubject("W1"); got != "logistics.deadletter.W1" {
		t.Errorf("DeadLetterSubject = %q", got)
	}
	if got := PartitionFilter(3); got != "3.logistics.trace.*" {
		t.Errorf("PartitionFilter(3) = %q", got)
	}
	for subject, want := range map[string]string{
		"3.logistics.trace.W1":    "W1",
		"logistics.trace.W-2":     "W-2",
		"logistics.deadletter.W3": "W3",
		"W4":                      "W4",
	} {
		if got := WaybillFromSubject(subject); got != want {
			t.Errorf("WaybillFromSubject(%q) = %q, want %q", subject, got, want)
		}
	}
}
