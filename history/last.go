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
	hist, err := s.js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Record{}, ErrNoHistory
	}
	if err != nil {
		return Record{}, fmt.Errorf("history: stream %s: %w", Stream, err)
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
