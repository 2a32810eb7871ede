package worker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ackConfirmer sends a partition's acks and waits for the server to
// confirm each (partition.ack says why a lane waits). It speaks what
// jetstream.Msg.DoubleAck speaks, an ack with a reply subject, for less
// CPU: DoubleAck is a request through the connection's shared reply map,
// under the connection's lock, bounded by a context of its own (a timer
// and a registration with the partition's context, shared by all its
// lanes), and that context alone cost as much CPU as the ack. Here the
// confirmations come to the partition's own subscription, one reply
// subject per stream sequence, and a plain timer bounds the wait.
type ackConfirmer struct {
	nc     *nats.Conn
	prefix string // of every reply subject: an inbox of this partition and "."
	sub    *nats.Subscription

	mu      sync.Mutex
	waiting map[uint64]chan error // by stream sequence; buffered, one answer each
}

// errAckNoResponders: the server answered an ack with "no responders"
// (the consumer is gone, or not yet back after a leader change).
var errAckNoResponders = errors.New("ack: no responders")

// errAckTimeout: no confirmation came in time.
var errAckTimeout = errors.New("ack: no confirmation in time")

func newAckConfirmer(nc *nats.Conn) (*ackConfirmer, error) {
	a := &ackConfirmer{nc: nc, prefix: nc.NewInbox() + ".", waiting: make(map[uint64]chan error)}
	sub, err := nc.Subscribe(a.prefix+"*", a.confirmed)
	if err != nil {
		return nil, err
	}
	a.sub = sub
	return a, nil
}

// confirmed takes the server's answer to the ack of one sequence.
func (a *ackConfirmer) confirmed(m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Subject[len(a.prefix):], 10, 64)
	if err != nil {
		return
	}
	var answer error
	// An ack's confirmation is an empty message; so is the server's "no
	// responders" status (nats.go's own requests check it the same way).
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		answer = errAckNoResponders
	}
	a.mu.Lock()
	ch := a.waiting[seq]
	delete(a.waiting, seq)
	a.mu.Unlock()
	if ch != nil {
		ch <- answer
	}
}

// ack acks the message of stream sequence seq whose ack subject is reply
// (jetstream.Msg.Reply) and waits until the server confirms it, timeout
// passes or ctx ends. A confirmation that comes after its wait ended is
// dropped; the caller's next try asks again.
func (a *ackConfirmer) ack(ctx context.Context, reply string, seq uint64, timeout time.Duration) error {
	ch := make(chan error, 1)
	a.mu.Lock()
	a.waiting[seq] = ch
	a.mu.Unlock()
	err := a.nc.PublishRequest(reply, a.prefix+strconv.FormatUint(seq, 10), ackBody)
	if err == nil {
		t := time.NewTimer(timeout)
		select {
		case err = <-ch:
			t.Stop()
			return err
		case <-t.C:
			err = errAckTimeout
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		}
	}
	a.mu.Lock()
	if a.waiting[seq] == ch {
		delete(a.waiting, seq)
	}
	a.mu.Unlock()
	return err
}

// ackBody is what DoubleAck sends: a plain ack.
var ackBody = []byte("+ACK")

// close ends the subscription once no ack is in progress. Its error
// needs no handling: it fails only when the connection is closed, and the
// subscription with it.
func (a *ackConfirmer) close() { _ = a.sub.Unsubscribe() }
