package pause

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream key-value bucket holding each deployment's
// pause, under its workers' consumer name prefix. Pause creates it with
// the trace stream's replica count.
const Bucket = "pathupdate_pause"

// Record is a deployment's pause as stored in Bucket. The zero Record is
// no pause.
type Record struct {
	// Until is when the pause ends by itself; zero: until resumed.
	Until time.Time `json:"until,omitzero"`
	// At is when the pause was made; zero for no pause.
	At time.Time `json:"at"`
}

// Active reports whether r pauses delivery at now.
func (r Record) Active(now time.Time) bool {
	return !r.At.IsZero() && (r.Until.IsZero() || now.Before(r.Until))
}

// Equal reports whether r and o are the same pause.
func (r Record) Equal(o Record) bool { return r.Until.Equal(o.Until) && r.At.Equal(o.At) }

// String says r at now in a few words, as State.String does.
func (r Record) String(now time.Time) string {
	return describe(r.Active(now), r.Until.IsZero(), r.Until)
}

// consumerUntil is the PauseUntil of a consumer paused by r.
func (r Record) consumerUntil() time.Time {
	if r.Until.IsZero() {
		return FarFuture()
	}
	return r.Until
}

// ConsumerPauseUntil is the ConsumerConfig.PauseUntil that creates a
// consumer as r wants it at now: nil unless r is active. (JetStream takes
// PauseUntil only when it creates a consumer; an update keeps the
// consumer's own, so an update never lifts a pause.)
func (r Record) ConsumerPauseUntil(now time.Time) *time.Time {
	if !r.Active(now) {
		return nil
	}
	u := r.consumerUntil()
	return &u
}

// Load reads the pause record of t; Record{} when there is none.
func Load(ctx context.Context, js jetstream.JetStream, t Target) (Record, error) {
	kv, err := bucket(ctx, js, t.WithDefaults(), false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, err
	}
	e, err := kv.Get(ctx, t.Consumer)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("pause: read the record %s in bucket %s: %w", t.Consumer, Bucket, err)
	}
	return decode(e), nil
}

// decode reads one entry of Bucket. A deleted key is no pause. A value
// that does not decode (written by a later version, or by hand) counts as
// a pause until resumed: someone meant to pause, and holding delivery
// back is the mistake that loses nothing.
func decode(e jetstream.KeyValueEntry) Record {
	if e.Operation() != jetstream.KeyValuePut {
		return Record{}
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil || r.At.IsZero() {
		return Record{At: e.Created().UTC()}
	}
	return r
}

func put(ctx context.Context, kv jetstream.KeyValue, t Target, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, t.Consumer, b); err != nil {
		return fmt.Errorf("pause: write the record %s in bucket %s: %w", t.Consumer, Bucket, err)
	}
	return nil
}

// bucket opens Bucket, creating it when create is set and it is missing.
func bucket(ctx context.Context, js jetstream.JetStream, t Target, create bool) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err == nil || !create || !errors.Is(err, jetstream.ErrBucketNotFound) {
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			err = fmt.Errorf("pause: bucket %s: %w", Bucket, err)
		}
		return kv, err
	}
	st, err := js.Stream(ctx, t.Stream)
	if err != nil {
		return nil, fmt.Errorf("pause: stream %s: %w", t.Stream, err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "pathupdate: delivery paused by an operator (`pathupdate pause`), per consumer name prefix",
		History:     1,
		Replicas:    st.CachedInfo().Config.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // created by another process meanwhile
		kv, err = js.KeyValue(ctx, Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("pause: create bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// agrees reports whether a consumer's pause is what r wants at now.
func agrees(info *jetstream.ConsumerInfo, r Record, now time.Time) bool {
	if !r.Active(now) {
		return !info.Paused
	}
	return info.Paused && info.Config.PauseUntil != nil && info.Config.PauseUntil.Equal(r.consumerUntil())
}

// Apply makes one consumer agree with r: it pauses it until r's end (or
// FarFuture), or resumes it when r is not active. It reports whether it
// changed anything; a consumer that does not exist is left alone.
func Apply(ctx context.Context, js jetstream.JetStream, stream, consumer string, r Record) (bool, error) {
	c, err := js.Consumer(ctx, stream, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	now := time.Now()
	if agrees(c.CachedInfo(), r, now) {
		return false, nil
	}
	if r.Active(now) {
		_, err = js.PauseConsumer(ctx, stream, consumer, r.consumerUntil())
	} else {
		_, err = js.ResumeConsumer(ctx, stream, consumer)
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return true, nil
}

// ApplyAll applies r to every consumer of t, and returns the errors of
// those it could not change, joined.
func ApplyAll(ctx context.Context, js jetstream.JetStream, t Target, r Record) error {
	t = t.WithDefaults()
	var errs []error
	for _, name := range t.Consumers() {
		if _, err := Apply(ctx, js, t.Stream, name, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
