package natstest

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// WorkQueueSettled reports whether the work-queue stream named stream
// holds nothing its consumers still have to deliver: empty, or only
// messages every consumer counts as acked (at or below its ack floor,
// nothing pending or awaiting an ack anywhere), and how many messages it
// still holds. skip names consumers whose ack floor does not count (one
// that is given no messages: its floor stays 0); nil skips none.
//
// A nats-server stopped and started under load can keep a few acked
// messages of a work-queue stream: its consumers' state had the acks, the
// stream's removal of them was lost (known upstream, e.g. nats-server
// issues 5148 and 7680). No consumer will ever deliver them again, so a
// test's drain check that waited for an empty stream would wait forever
// while every event was delivered; the caller checks the deliveries
// themselves.
func WorkQueueSettled(ctx context.Context, js jetstream.JetStream, stream string, skip func(consumer string) bool) (settled bool, left uint64) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return false, 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return false, 0
	}
	if info.State.Msgs == 0 {
		return true, 0
	}
	left = info.State.Msgs
	floor, busy := uint64(0), false
	l := st.ListConsumers(ctx)
	for ci := range l.Info() { // to the end: the lister's goroutine ends with its channel
		busy = busy || ci.NumAckPending != 0 || ci.NumPending != 0
		if (skip == nil || !skip(ci.Name)) && (floor == 0 || ci.AckFloor.Stream < floor) {
			floor = ci.AckFloor.Stream
		}
	}
	if busy || l.Err() != nil {
		return false, left
	}
	last, err := st.GetLastMsgForSubject(ctx, ">") // the newest message the stream still holds
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, 0
	}
	return err == nil && last.Sequence <= floor, left
}
