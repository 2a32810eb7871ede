package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the two streams and the subjects producers and dead letters use
// (docs/contract.md "Subjects and streams"). Producers publish on
// logistics.trace.<waybill>; the trace stream stores the event on
// <p>.logistics.trace.<waybill>, p = FNV-32a(waybill) mod Partitions, so a
// consumer takes one partition with PartitionFilter(p) and every event of
// a waybill lands in the same partition. Dead letters are stored as
// published, on logistics.deadletter.<waybill>.
const (
	TraceStream             = "LOGISTICS_TRACE"
	DeadLetterStream        = "LOGISTICS_DEADLETTER"
	TraceSubjectPrefix      = "logistics.trace."
	DeadLetterSubjectPrefix = "logistics.deadletter."
)

// Defaults of StreamsConfig.
const (
	DefaultReplicas   = 1
	DefaultPartitions = 8
	DefaultDuplicates = 2 * time.Minute
	// MaxPartitions bounds StreamsConfig.Partitions: every partition is a
	// consumer somewhere, and more than this buys no parallelism a WeChat
	// app's quota could absorb.
	MaxPartitions = 1024
	// MaxReplicas is the largest replica count JetStream supports.
	MaxReplicas = 5
)

// TraceSubject is the subject a producer publishes waybillID's events to.
func TraceSubject(waybillID string) string { return TraceSubjectPrefix + waybillID }

// DeadLetterSubject is the subject waybillID's dead letters are stored on.
func DeadLetterSubject(waybillID string) string { return DeadLetterSubjectPrefix + waybillID }

// StreamsConfig sets how EnsureStreams creates or updates LOGISTICS_TRACE
// and LOGISTICS_DEADLETTER. The zero value is usable: WithDefaults fills it.
type StreamsConfig struct {
	// Replicas of both streams; default DefaultReplicas (1). Use 3 on a
	// cluster. Can be changed on an existing stream.
	Replicas int
	// Partitions of the trace stream; default DefaultPartitions (8). The
	// count is baked into every stored subject when the stream is created
	// and cannot change later: EnsureStreams refuses a different count with
	// a *PartitionsMismatchError.
	Partitions int
	// MaxAge of a trace event; default 0 = kept until MaxBytes is reached.
	// Age-based removal deletes events whether or not a worker delivered
	// them, so set it well above the longest outage you want to ride out.
	MaxAge time.Duration
	// MaxBytes of the trace stream; default -1 = unlimited. When full the
	// stream refuses publishes (DiscardNew) rather than dropping events.
	MaxBytes int64
	// Duplicates is the Nats-Msg-Id window of both streams; default
	// DefaultDuplicates (2m). It must outlast a worker's AckWait so a crash
	// between a dead letter's PubAck and the original's Ack stays harmless.
	Duplicates time.Duration
	// DeadLetterMaxAge of a dead letter; default 0 = kept until an operator
	// replays or purges it.
	DeadLetterMaxAge time.Duration
	// DeadLetterMaxBytes of the dead-letter stream; default -1 = unlimited.
	// When full, writing a dead letter fails, so the original is not
	// acknowledged and stays in the trace stream.
	DeadLetterMaxBytes int64
	// Storage of both streams; default jetstream.FileStorage (the zero
	// value). Cannot be changed on an existing stream.
	Storage jetstream.StorageType
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c StreamsConfig) WithDefaults() StreamsConfig {
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.DeadLetterMaxBytes == 0 {
		c.DeadLetterMaxBytes = -1
	}
	return c
}

// Validate reports, as FieldErrors, every field of c (after WithDefaults)
// that the server would refuse or that would break delivery.
func (c StreamsConfig) Validate() error {
	errs := FieldErrors{Prefix: "pathupdate: StreamsConfig."}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		errs.Add("Replicas", "%d: use 1 to %d (1 on one server, 3 on a cluster)", c.Replicas, MaxReplicas)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		errs.Add("Partitions", "%d: use 1 to %d (fixed when the stream is created)", c.Partitions, MaxPartitions)
	}
	for _, f := range []struct {
		name     string
		age      time.Duration
		maxBytes int64
	}{{"", c.MaxAge, c.MaxBytes}, {"DeadLetter", c.DeadLetterMaxAge, c.DeadLetterMaxBytes}} {
		switch {
		case f.age < 0:
			errs.Add(f.name+"MaxAge", "%s: must not be negative (0: unlimited)", f.age)
		case f.age > 0 && c.Duplicates > f.age:
			errs.Add("Duplicates", "%s exceeds %sMaxAge %s: the server refuses a window longer than the stream keeps messages", c.Duplicates, f.name, f.age)
		}
		if f.maxBytes != -1 && f.maxBytes <= 0 {
			errs.Add(f.name+"MaxBytes", "%d: use -1 (unlimited) or a positive size in bytes", f.maxBytes)
		}
	}
	if c.Duplicates <= 0 {
		errs.Add("Duplicates", "%s: use a positive duration (default %s)", c.Duplicates, DefaultDuplicates)
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		errs.Add("Storage", "%d: use jetstream.FileStorage or jetstream.MemoryStorage", c.Storage)
	}
	return errs.Err()
}

// PartitionsMismatchError says the trace stream exists with a partition
// count other than the one asked for. Changing it means re-partitioning
// (a new stream), which EnsureStreams never does on its own.
type PartitionsMismatchError struct {
	Existing, Requested int
}

func (e *PartitionsMismatchError) Error() string {
	return fmt.Sprintf("stream %s exists with %d partitions, %d requested: the partition count is fixed at creation; "+
		"start with --partitions %d, or drain and delete the stream to re-partition",
		TraceStream, e.Existing, e.Requested, e.Existing)
}

// traceTransformDestination is where the trace stream stores an event
// published on logistics.trace.<waybill>: <p>.logistics.trace.<waybill>,
// p = FNV-32a(waybill) mod partitions. The partition comes first because
// stored subjects then never match the stream's own subject
// (logistics.trace.*, three tokens), so nobody can publish straight into a
// partition, and because it is the layout partitioned consumer groups
// (orbit.go pcgroups: filters "<p>.>") expect.
func traceTransformDestination(partitions int) string {
	return fmt.Sprintf("{{partition(%d,1)}}.%s{{wildcard(1)}}", partitions, TraceSubjectPrefix)
}

// partitionsInDestination reads the count back from a stored transform;
// the server keeps the destination as given, spacing included.
var partitionsInDestination = regexp.MustCompile(
	`^\{\{\s*partition\(\s*(\d+)\s*,\s*1\s*\)\s*\}\}\.` + regexp.QuoteMeta(TraceSubjectPrefix) + `\{\{\s*wildcard\(\s*1\s*\)\s*\}\}$`)

// UnpartitionedFilter matches what the trace stream stores without a
// partition: a publish to a subject with a literal wildcard token
// (logistics.trace.* or logistics.trace.>) matches the stream but not its
// subject transform, so it keeps its own subject. Partition subjects start
// with the partition number and never match it.
const UnpartitionedFilter = TraceSubjectPrefix + ">"

// PartitionOf is the partition the trace stream stores waybillID's events
// in when it has the given partition count: the server's
// {{partition(n,1)}}, FNV-32a of the waybill id modulo n.
func PartitionOf(waybillID string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(waybillID))
	return int(h.Sum32() % uint32(partitions))
}

// StoredTraceSubject is the subject the trace stream stores waybillID's
// events under.
func StoredTraceSubject(waybillID string, partitions int) string {
	return strconv.Itoa(PartitionOf(waybillID, partitions)) + "." + TraceSubjectPrefix + waybillID
}

// PartitionFilter is the consumer filter subject of partition p, 0 <= p <
// Partitions: "<p>.logistics.trace.*".
func PartitionFilter(p int) string {
	return strconv.Itoa(p) + "." + TraceSubjectPrefix + "*"
}

// ValidName reports whether s can name a deployment's consumers (their
// prefix) or a worker: 1 to 128 letters, digits, - and _, which every
// JetStream consumer name and key-value key takes.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// PartitionConsumer is the durable consumer of partition p for a
// deployment whose workers' consumer name prefix is prefix
// (worker.Config.Consumer): "<prefix>-p<p>". Every package that names a
// partition consumer calls this one.
func PartitionConsumer(prefix string, p int) string { return prefix + "-p" + strconv.Itoa(p) }

// UnpartitionedConsumer is the durable consumer that takes what the trace
// stream stored without a partition (UnpartitionedFilter), for a
// deployment whose workers' consumer name prefix is prefix.
func UnpartitionedConsumer(prefix string) string { return prefix + "-unpartitioned" }

// WaybillFromSubject returns the last token of a subject: the waybill of a
// stored trace subject (<p>.logistics.trace.<waybill>), of a publish
// subject, or of a dead-letter subject.
func WaybillFromSubject(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

func traceStreamConfig(c StreamsConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        TraceStream,
		Description: "pathupdate: waybill trace events waiting for delivery to WeChat logistics.updatePath",
		Subjects:    []string{TraceSubjectPrefix + "*"},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      TraceSubjectPrefix + "*",
			Destination: traceTransformDestination(c.Partitions),
		},
		// Work-queue retention: an event leaves the stream when a worker
		// acks it, so the stream holds the backlog, not the history.
		// Events published before any worker exists are kept.
		Retention: jetstream.WorkQueuePolicy,
		// A work stream must never drop an event silently: when full it
		// refuses the publish and the producer sees the error.
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.MaxAge,
		MaxBytes:    c.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  c.Duplicates,
		Storage:     c.Storage,
		Replicas:    c.Replicas,
		AllowDirect: true,
	}
}

func deadLetterStreamConfig(c StreamsConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "pathupdate: events WeChat refused or that could not be delivered, kept for operators to inspect, replay or purge",
		Subjects:    []string{DeadLetterSubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		// A full dead-letter stream refuses the write, so the original is
		// not acknowledged instead of being lost.
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.DeadLetterMaxAge,
		MaxBytes:    c.DeadLetterMaxBytes,
		MaxMsgs:     -1,
		Duplicates:  c.Duplicates,
		Storage:     c.Storage,
		Replicas:    c.Replicas,
		AllowDirect: true,
		// Operators remove single records after replay or purge; nothing
		// may collapse a waybill's dead letters into one.
		AllowRollup: false,
		DenyDelete:  false,
		DenyPurge:   false,
	}
}

// EnsureStreams creates LOGISTICS_TRACE and LOGISTICS_DEADLETTER, or
// updates them to cfg (after WithDefaults) when they exist. It is
// idempotent and safe for several workers starting at once, and returns
// once both streams have a leader (waiting at most StreamLeaderTimeout
// each). It refuses to change the trace stream's partition count
// (*PartitionsMismatchError) or to take over a trace stream whose subject
// transform it did not write; storage type and replica counts the servers
// cannot provide come back as the server's error, naming the stream.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	if js == nil {
		return errors.New("EnsureStreams: nil jetstream.JetStream")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	checkTrace := func(have jetstream.StreamConfig) error {
		existing, err := partitionsOf(have)
		if err != nil {
			return err
		}
		if existing != cfg.Partitions {
			return &PartitionsMismatchError{Existing: existing, Requested: cfg.Partitions}
		}
		return nil
	}
	if err := ensureStream(ctx, js, traceStreamConfig(cfg), checkTrace); err != nil {
		return err
	}
	return ensureStream(ctx, js, deadLetterStreamConfig(cfg), nil)
}

// TracePartitions reads the partition count of the existing trace stream,
// for workers and status reports that did not create it.
func TracePartitions(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, TraceStream)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", TraceStream, err)
	}
	return partitionsOf(s.CachedInfo().Config)
}

func partitionsOf(have jetstream.StreamConfig) (int, error) {
	var dest string
	if have.SubjectTransform != nil {
		dest = have.SubjectTransform.Destination
	}
	m := partitionsInDestination.FindStringSubmatch(dest)
	if m == nil {
		problem := fmt.Sprintf("its subject transform destination is %q, not the %q layout pathupdate stores events in",
			dest, traceTransformDestination(DefaultPartitions))
		if dest == "" {
			problem = fmt.Sprintf("it has no subject transform, so it lacks the %q partition layout pathupdate stores events in",
				traceTransformDestination(DefaultPartitions))
		}
		return 0, &StreamConflictError{Stream: TraceStream, Problem: problem}
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, fmt.Errorf("stream %s: partition count in %q: %w", TraceStream, dest, err)
	}
	return n, nil
}

// ensureStream creates want, or checks the existing stream with check and
// updates it to want.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, check func(jetstream.StreamConfig) error) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if err == nil {
			return waitStreamLeader(ctx, js, want)
		}
		// The server answers "name in use" when another worker created the
		// stream since our look-up with a config other than ours: fall
		// through to check and update it.
		if isAPIError(err, jsErrCodeSubjectOverlap) {
			return &StreamConflictError{Stream: streamTaking(ctx, js, want.Subjects[0]),
				Problem: fmt.Sprintf("it already takes the subjects %s that pathupdate's stream %s needs", want.Subjects[0], want.Name), Err: err}
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		s, err = js.Stream(ctx, want.Name)
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	if check != nil {
		if err := check(have); err != nil {
			return err
		}
	}
	if have.Retention != want.Retention {
		// pathupdate never changes a stream's retention (nor can the
		// server): this one was made by something else.
		return &StreamConflictError{Stream: want.Name,
			Problem: fmt.Sprintf("its retention is %s, not pathupdate's %s", have.Retention, want.Retention)}
	}
	if sameSettings(have, want) {
		// Nothing to change: no update. Every worker start would otherwise
		// rewrite the stream's config (a proposal on a cluster), and
		// nats-server 2.15.2 reads a file store's config without its lock
		// while creating a consumer, a data race with such a rewrite that
		// -race runs of workers starting side by side have hit.
		return waitStreamLeader(ctx, js, want)
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return fmt.Errorf("update stream %s (replicas %d, storage %s): %w", want.Name, want.Replicas, want.Storage, err)
	}
	return waitStreamLeader(ctx, js, want)
}

// jsErrCodeSubjectOverlap is the server's answer to a stream whose
// subjects another stream already takes (JSStreamSubjectOverlapErr).
const jsErrCodeSubjectOverlap jetstream.ErrorCode = 10065

// isAPIError reports whether err is the JetStream API error code.
func isAPIError(err error, code jetstream.ErrorCode) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == code
}

// streamTaking names the stream that takes subject, or "" when the server
// does not say within a second (it is only for the message).
func streamTaking(ctx context.Context, js jetstream.JetStream, subject string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return ""
	}
	return name
}

// sameSettings reports whether the stored config have already holds every
// setting EnsureStreams writes in want (the server adds others of its own,
// which are not compared).
func sameSettings(have, want jetstream.StreamConfig) bool {
	sameTransform := (have.SubjectTransform == nil) == (want.SubjectTransform == nil) &&
		(want.SubjectTransform == nil || *have.SubjectTransform == *want.SubjectTransform)
	return sameTransform && slices.Equal(have.Subjects, want.Subjects) &&
		have.Description == want.Description && have.Retention == want.Retention &&
		have.Discard == want.Discard && have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes &&
		have.MaxMsgs == want.MaxMsgs && have.Duplicates == want.Duplicates && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.AllowDirect == want.AllowDirect &&
		have.AllowRollup == want.AllowRollup && have.DenyDelete == want.DenyDelete && have.DenyPurge == want.DenyPurge
}

// StreamLeaderTimeout bounds how long EnsureStreams waits for a created or
// updated stream to have a leader with the requested replicas.
const StreamLeaderTimeout = 30 * time.Second

// waitStreamLeader returns once the stream has a leader and the requested
// number of peers. On a cluster a new stream, or one whose replica count
// just changed, has no leader for a moment, and a publish sent then gets
// no answer at all (seen: R1 -> R3 left ~1 s without a leader); waiting
// here means a worker that returned from EnsureStreams can use the
// streams. It polls: the server offers no event a client can wait on
// without extra permissions.
func waitStreamLeader(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	ctx, cancel := context.WithTimeout(ctx, StreamLeaderTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// A stream without a leader may leave an info request unanswered:
		// bound each look.
		pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
		s, err := js.Stream(pollCtx, want.Name)
		pollCancel()
		if err == nil {
			ci := s.CachedInfo().Cluster
			if ci == nil || ci.Leader != "" && len(ci.Replicas) == want.Replicas-1 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("stream %s: no leader with %d replicas yet: %w", want.Name, want.Replicas, err)
		case <-tick.C:
		}
	}
}
