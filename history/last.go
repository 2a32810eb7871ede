package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoRecord: the history holds no record of the waybill.
var ErrNoRecord = errors.New("history: no record of this waybill")

// Last returns the newest record of waybillID: one direct get of the last
// message on its subject, whatever the stream holds. A waybill without a
// record gives ErrNoRecord; a missing stream ErrNoHistory.
func (s *Store) Last(ctx context.Context, waybillID string) (Record, error) {
	hist, err := s.stream(ctx)
	if err != nil {
		return Record{}, err
	}
	m, err := hist.GetLastMsgForSubject(ctx, Subject(waybillID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, ErrNoRecord
	}
	if err != nil {
		return Record{}, fmt.Errorf("history: last record of %s: %w", waybillID, err)
	}
	return decode(m.Data)
}

// stream is the history stream: ErrNoHistory when it does not exist.
func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	hist, err := s.js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoHistory
	}
	if err != nil {
		return nil, fmt.Errorf("history: stream %s: %w", Stream, err)
	}
	return hist, nil
}

// SettledBy reports whether r, the newest record of its waybill, shows
// that the waybill's event at stream sequence seq was settled already:
// r is that event delivered or dead-lettered, or r is a worker's record
// of a later event of the waybill (a worker starts an event only after
// every older one of its waybill was settled). An operator's record
// (replayed, purged) proves nothing about seq.
func (r Record) SettledBy(seq uint64) bool {
	switch r.State {
	case Delivered, DeadLettered:
		return r.Seq >= seq
	case Retrying:
		return r.Seq > seq
	}
	return false
}

// Settled reports whether the history holds a record of waybillID's event
// at stream sequence seq being delivered or dead-lettered: proof of that
// event itself, where SettledBy infers it from a later one. It reads the
// waybill's records (by subject), so it is for the rare question, not for
// every event. A missing stream gives ErrNoHistory.
func (s *Store) Settled(ctx context.Context, waybillID string, seq uint64) (bool, error) {
	hist, err := s.stream(ctx)
	if err != nil {
		return false, err
	}
	found := false
	err = eachBySubject(ctx, hist, Subject(waybillID), func(m *jetstream.RawStreamMsg) error {
		if r, err := decode(m.Data); err == nil && r.Seq == seq && (r.State == Delivered || r.State == DeadLettered) {
			found = true
			return errFound
		}
		return nil
	})
	if found {
		return true, nil
	}
	return false, err
}

// errFound stops a scan that found what it looked for.
var errFound = errors.New("found")
