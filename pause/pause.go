package pause

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
)

// ErrUntilPast is returned (wrapped) by Pause for an end time that is not
// in the future: such a pause would end before it began.
var ErrUntilPast = errors.New("pause: the end time is not in the future")

// FarFuture is the time a pause "until resumed" pauses the consumers
// until: JetStream needs a time, and this one is far enough away to mean
// never while every server and client can still encode it. Any consumer
// pause ending at or after it counts as until resumed.
func FarFuture() time.Time { return time.Date(2999, 12, 31, 0, 0, 0, 0, time.UTC) }

// Target names the consumers of one deployment.
type Target struct {
	// Stream holds the consumers. Default pathupdate.TraceStream.
	Stream string
	// Consumer is the workers' consumer name prefix
	// (worker.Config.Consumer, default "pathupdate"). Required.
	Consumer string
	// Partitions is the trace stream's partition count
	// (pathupdate.TracePartitions). Required.
	Partitions int
}

// TargetOf is the Target of the deployment whose workers use the consumer
// name prefix consumer, with its partition count read from the trace
// stream.
func TargetOf(ctx context.Context, js jetstream.JetStream, consumer string) (Target, error) {
	n, err := pathupdate.TracePartitions(ctx, js)
	if err != nil {
		return Target{}, fmt.Errorf("pause: %w", err)
	}
	return Target{Stream: pathupdate.TraceStream, Consumer: consumer, Partitions: n}, nil
}

// WithDefaults returns a copy of t with every zero field set to its default.
func (t Target) WithDefaults() Target {
	if t.Stream == "" {
		t.Stream = pathupdate.TraceStream
	}
	return t
}

// Validate reports what t cannot work without, as pathupdate.FieldErrors.
func (t Target) Validate() error {
	errs := pathupdate.FieldErrors{Prefix: "pause: Target."}
	if !pathupdate.ValidName(t.Consumer) {
		errs.Add("Consumer", "%q: use the workers' consumer name prefix (letters, digits, - and _; default \"pathupdate\")", t.Consumer)
	}
	if t.Partitions < 1 {
		errs.Add("Partitions", "%d: use the trace stream's partition count (pause.TargetOf reads it)", t.Partitions)
	}
	return errs.Err()
}

// Consumers lists the durable consumers a pause covers: the partition
// consumers in partition order, then the unpartitioned one.
func (t Target) Consumers() []string {
	out := make([]string, 0, t.Partitions+1)
	for p := range t.Partitions {
		out = append(out, pathupdate.PartitionConsumer(t.Consumer, p))
	}
	return append(out, pathupdate.UnpartitionedConsumer(t.Consumer))
}

// State is a deployment's pause as recorded, with what each consumer says.
type State struct {
	// Paused is true while a pause stands: recorded and not yet at its end.
	Paused bool `json:"paused"`
	// UntilResumed is true for a pause without an end time.
	UntilResumed bool `json:"until_resumed,omitempty"`
	// Until is when the pause ends by itself; zero when UntilResumed or
	// not Paused.
	Until time.Time `json:"until,omitzero"`
	// Since is when the pause was made; zero when not Paused.
	Since time.Time `json:"since,omitzero"`
	// Consumers is every consumer of the Target, in Target.Consumers order.
	Consumers []ConsumerState `json:"consumers"`
}

// ConsumerState is what one consumer says of its pause.
type ConsumerState struct {
	Name string `json:"name"`
	// Exists is false for a consumer no worker has created yet; a worker
	// creates it paused while a pause stands.
	Exists       bool      `json:"exists"`
	Paused       bool      `json:"paused"`
	UntilResumed bool      `json:"until_resumed,omitempty"`
	Until        time.Time `json:"until,omitzero"` // zero when UntilResumed or not Paused
	// Agrees is false while the consumer is paused and no pause is
	// recorded, or the other way round, or until a different time: a
	// Pause or Resume that failed half way, or a pause made by hand
	// (`nats consumer pause`). Running workers put it right.
	Agrees bool `json:"agrees"`
}

// String says the consumer's pause as State.String does.
func (c ConsumerState) String() string { return describe(c.Paused, c.UntilResumed, c.Until) }

// Disagreeing returns the consumers whose pause differs from the record.
func (s State) Disagreeing() []ConsumerState {
	var out []ConsumerState
	for _, c := range s.Consumers {
		if !c.Agrees {
			out = append(out, c)
		}
	}
	return out
}

// Missing counts the consumers that do not exist yet.
func (s State) Missing() int {
	n := 0
	for _, c := range s.Consumers {
		if !c.Exists {
			n++
		}
	}
	return n
}

// String says the state in a few words: "paused until resumed", "paused
// until 2026-11-29T22:00:00Z" or "not paused".
func (s State) String() string {
	return describe(s.Paused, s.UntilResumed, s.Until)
}

func describe(paused, untilResumed bool, until time.Time) string {
	switch {
	case !paused:
		return "not paused"
	case untilResumed:
		return "paused until resumed"
	}
	return "paused until " + until.UTC().Format(time.RFC3339)
}

// Pause records a pause of every consumer of t and pauses each that
// exists. A zero until pauses until Resume; any other until must be in
// the future (else ErrUntilPast) and ends the pause by itself then.
// Pausing again replaces the end time. The returned State is read after;
// an error for some consumers leaves the pause recorded, and running
// workers apply it to those within seconds.
func Pause(ctx context.Context, js jetstream.JetStream, t Target, until time.Time) (State, error) {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return State{}, err
	}
	now := time.Now()
	if !until.IsZero() && !until.After(now) {
		return State{}, fmt.Errorf("%w: %s is %s ago; give a time after now, or none to pause until resumed",
			ErrUntilPast, until.UTC().Format(time.RFC3339), now.Sub(until).Round(time.Second))
	}
	if !until.Before(FarFuture()) {
		until = time.Time{}
	}
	kv, err := bucket(ctx, js, t, true)
	if err != nil {
		return State{}, err
	}
	r := Record{Until: until.UTC(), At: now.UTC()}
	if err := put(ctx, kv, t, r); err != nil {
		return State{}, err
	}
	applyErr := ApplyAll(ctx, js, t, r)
	st, err := readAgreed(ctx, js, t, r)
	if applyErr != nil {
		return st, fmt.Errorf("pause: recorded, but not every consumer is paused yet (running workers pause them within seconds): %w", applyErr)
	}
	return st, err
}

// Resume deletes the pause record of t and resumes every consumer of t
// that is paused, recorded or not. Resuming what is not paused does
// nothing and is no error.
func Resume(ctx context.Context, js jetstream.JetStream, t Target) (State, error) {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return State{}, err
	}
	kv, err := bucket(ctx, js, t, false)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound): // never paused through this package
	case err != nil:
		return State{}, err
	default:
		if err := kv.Delete(ctx, t.Consumer); err != nil {
			return State{}, fmt.Errorf("pause: delete the record %s in bucket %s: %w", t.Consumer, Bucket, err)
		}
	}
	applyErr := ApplyAll(ctx, js, t, Record{})
	st, err := readAgreed(ctx, js, t, Record{})
	if applyErr != nil {
		return st, fmt.Errorf("pause: resume recorded, but some consumers are still paused (running workers resume them within seconds): %w", applyErr)
	}
	return st, err
}

// Read reports the pause of t and what each consumer says. It changes
// nothing, and a deployment never paused (no Bucket) reads as not paused.
func Read(ctx context.Context, js jetstream.JetStream, t Target) (State, error) {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return State{}, err
	}
	r, err := Load(ctx, js, t)
	if err != nil {
		return State{}, err
	}
	return read(ctx, js, t, r)
}

// agreeWait bounds how long Pause and Resume wait for every consumer to
// show the change: a clustered server answers a pause request before its
// replicas applied it.
const agreeWait = 3 * time.Second

var errDisagree = errors.New("consumers disagree")

// readAgreed reads the State of r until no consumer disagrees with it, at
// most agreeWait, and returns the last one read.
func readAgreed(ctx context.Context, js jetstream.JetStream, t Target, r Record) (State, error) {
	var st State
	err := retry.Until(ctx, retry.UntilConfig{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Limit: agreeWait},
		func(ctx context.Context) error {
			var err error
			if st, err = read(ctx, js, t, r); err != nil {
				return retry.Permanent(err)
			}
			if len(st.Disagreeing()) > 0 {
				return errDisagree
			}
			return nil
		})
	if errors.Is(err, errDisagree) {
		err = nil // the State says which; running workers put them right
	}
	return st, err
}

// read builds the State of record r and t's consumers.
func read(ctx context.Context, js jetstream.JetStream, t Target, r Record) (State, error) {
	now := time.Now()
	st := State{Paused: r.Active(now)}
	if st.Paused {
		st.UntilResumed, st.Since = r.Until.IsZero(), r.At
		if !st.UntilResumed {
			st.Until = r.Until
		}
	}
	for _, name := range t.Consumers() {
		cs := ConsumerState{Name: name, Agrees: true}
		c, err := js.Consumer(ctx, t.Stream, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
		case err != nil:
			return st, fmt.Errorf("pause: consumer %s on stream %s: %w", name, t.Stream, err)
		default:
			info := c.CachedInfo()
			cs.Exists, cs.Paused, cs.Agrees = true, info.Paused, agrees(info, r, now)
			if cs.Paused && info.Config.PauseUntil != nil {
				if u := *info.Config.PauseUntil; u.Before(FarFuture()) {
					cs.Until = u.UTC()
				} else {
					cs.UntilResumed = true
				}
			}
		}
		st.Consumers = append(st.Consumers, cs)
	}
	return st, nil
}
