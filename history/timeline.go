package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// Errors a caller of Timeline decides on.
var (
	// ErrInvalidWaybill: the id is not a waybill id; nothing was read.
	ErrInvalidWaybill = errors.New("history: not a waybill id")
	// ErrNoHistory: the history stream does not exist (history is off, or
	// the deployment predates it).
	ErrNoHistory = errors.New("history: stream " + Stream + " does not exist")
)

// Step is one line of a waybill's timeline.
type Step struct {
	Seq        uint64 `json:"seq"`
	ActionType int    `json:"action_type"`
	ActionTime int64  `json:"action_time"`
	ActionMsg  string `json:"action_msg,omitempty"`
	State      State  `json:"state"`
	Attempts   int    `json:"attempts"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"` // always present: scripts read it as `pathupdate trace --json` documents
	Reason     string `json:"reason,omitempty"`
	// At is when the step happened: stored (waiting), decided (retrying),
	// settled, replayed or purged.
	At            time.Time `json:"at"`
	NextAttempt   time.Time `json:"next_attempt,omitzero"`
	DeadLetterSeq uint64    `json:"dead_letter_seq,omitempty"`
	ReplayOf      uint64    `json:"replay_of,omitempty"`
	LatencyMS     int64     `json:"latency_ms,omitempty"`
	Worker        string    `json:"worker,omitempty"`
}

// Timeline is what is known of one waybill, oldest step first.
type Timeline struct {
	WaybillID string
	Steps     []Step
	// Since is how far back the history reaches (now less the history
	// stream's MaxAge; zero when it keeps records for ever).
	Since time.Time
}

// Store reads timelines. It only reads.
type Store struct {
	js  jetstream.JetStream
	now func() time.Time
}

// NewStore returns a Store on js; now is the clock (nil: time.Now).
func NewStore(js jetstream.JetStream, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{js: js, now: now}
}

// Timeline returns waybillID's timeline from the history, dead-letter and
// trace streams. It reads by subject, so its cost does not grow with other
// waybills' traffic. An invalid id gives ErrInvalidWaybill before anything
// is read; a missing history stream gives ErrNoHistory.
func (s *Store) Timeline(ctx context.Context, waybillID string) (Timeline, error) {
	if !pathupdate.ValidWaybillID(waybillID) {
		return Timeline{}, fmt.Errorf("%w: %q (1..%d of A-Z a-z 0-9 - _)", ErrInvalidWaybill, waybillID, pathupdate.MaxWaybillIDLen)
	}
	tl := Timeline{WaybillID: waybillID}
	hist, err := s.js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return tl, fmt.Errorf("%w: history is off (--history-max-age 0) or no worker of this version has started", ErrNoHistory)
	}
	if err != nil {
		return tl, fmt.Errorf("history: stream %s: %w", Stream, err)
	}
	if age := hist.CachedInfo().Config.MaxAge; age > 0 {
		tl.Since = s.now().Add(-age)
	}

	var recs []Record
	if err := eachBySubject(ctx, hist, Subject(waybillID), func(m *jetstream.RawStreamMsg) error {
		r, err := decode(m.Data)
		if err == nil {
			recs = append(recs, r)
		}
		return nil // a record this version cannot read is left out, not fatal
	}); err != nil {
		return tl, err
	}

	// The latest retry of each event, and which events are settled.
	settled := map[uint64]bool{}
	lastRetry := map[uint64]Record{}
	dlSeen := map[uint64]bool{}
	for _, r := range recs {
		switch r.State {
		case Retrying:
			if prev, ok := lastRetry[r.Seq]; !ok || !r.At.Before(prev.At) {
				lastRetry[r.Seq] = r
			}
			continue
		case Delivered, DeadLettered:
			settled[r.Seq] = true
		}
		if r.State == DeadLettered && r.DeadLetterSeq != 0 {
			dlSeen[r.DeadLetterSeq] = true
		}
		tl.Steps = append(tl.Steps, stepOf(r))
	}

	// Dead letters the history does not know of (a lost record, or written
	// before history existed).
	dls, err := s.js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return tl, fmt.Errorf("history: stream %s: %w", pathupdate.DeadLetterStream, err)
	}
	if err == nil {
		if err := eachBySubject(ctx, dls, pathupdate.DeadLetterSubject(waybillID), func(m *jetstream.RawStreamMsg) error {
			if dlSeen[m.Sequence] {
				return nil
			}
			r, err := deadletter.FromRawMsg(m)
			if err != nil || r.WaybillID != waybillID {
				return nil
			}
			st := Step{Seq: r.OriginalSeq, State: DeadLettered, Attempts: r.Attempts, ErrCode: r.ErrCode, ErrMsg: r.ErrMsg,
				Reason: r.Reason, At: r.FailedAt, DeadLetterSeq: m.Sequence}
			if ev, err := pathupdate.DecodeEvent(r.Event); err == nil {
				st.ActionType, st.ActionTime, st.ActionMsg = int(ev.ActionType), ev.ActionTime, ev.ActionMsg
			}
			settled[r.OriginalSeq] = true
			tl.Steps = append(tl.Steps, st)
			return nil
		}); err != nil {
			return tl, err
		}
	}

	// Events not settled yet.
	trace, err := s.js.Stream(ctx, pathupdate.TraceStream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return tl, fmt.Errorf("history: stream %s: %w", pathupdate.TraceStream, err)
	}
	if err == nil {
		parts, err := pathupdate.TracePartitions(ctx, s.js)
		if err != nil {
			return tl, fmt.Errorf("history: %w", err)
		}
		if err := eachBySubject(ctx, trace, pathupdate.StoredTraceSubject(waybillID, parts), func(m *jetstream.RawStreamMsg) error {
			if settled[m.Sequence] {
				return nil // settled, its ack not yet removed it
			}
			st := Step{Seq: m.Sequence, State: Waiting, At: m.Time}
			if ev, err := pathupdate.DecodeEvent(m.Data); err == nil {
				st.ActionType, st.ActionTime, st.ActionMsg = int(ev.ActionType), ev.ActionTime, ev.ActionMsg
			}
			if r, ok := lastRetry[m.Sequence]; ok {
				st.State, st.Attempts, st.ErrCode, st.ErrMsg = Retrying, r.Attempts, r.ErrCode, r.ErrMsg
				st.At, st.NextAttempt, st.Worker = r.At, r.NextAttempt, r.Worker
			}
			tl.Steps = append(tl.Steps, st)
			return nil
		}); err != nil {
			return tl, err
		}
	}

	sortSteps(tl.Steps)
	return tl, nil
}

// sortSteps orders steps by time, except that a replay comes before the
// steps of the copy it published (same Seq): the operator's command
// records the replay after the publish, and a worker may deliver the copy
// before that.
func sortSteps(steps []Step) {
	first := map[uint64]time.Time{} // earliest step of each copy, replays aside
	for _, s := range steps {
		if t, ok := first[s.Seq]; s.State != Replayed && (!ok || s.At.Before(t)) {
			first[s.Seq] = s.At
		}
	}
	key := func(s Step) time.Time {
		if t, ok := first[s.Seq]; s.State == Replayed && ok && t.Before(s.At) {
			return t
		}
		return s.At
	}
	rank := func(s Step) int { // at the same instant: the replay first
		if s.State == Replayed {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(steps, func(a, b Step) int {
		if c := key(a).Compare(key(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

func stepOf(r Record) Step {
	return Step{Seq: r.Seq, ActionType: r.ActionType, ActionTime: r.ActionTime, ActionMsg: r.ActionMsg, State: r.State,
		Attempts: r.Attempts, ErrCode: r.ErrCode, ErrMsg: r.ErrMsg, Reason: r.Reason, At: r.At, NextAttempt: r.NextAttempt,
		DeadLetterSeq: r.DeadLetterSeq, ReplayOf: r.ReplayOf, LatencyMS: r.LatencyMS, Worker: r.Worker}
}

// eachBySubject calls fn with every message of st on subject, in stream
// order, fetching each by subject (direct get, next by subject): the cost
// is that of the subject's messages, not of the stream's.
func eachBySubject(ctx context.Context, st jetstream.Stream, subject string, fn func(*jetstream.RawStreamMsg) error) error {
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("history: read %s from %s: %w", subject, st.CachedInfo().Config.Name, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
}
