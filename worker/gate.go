package worker

import (
	"context"
	"time"
)

// gateCounts is what the takeover gate compares: the consumer's count of
// messages out for delivery, to anyone, and this partition's own count.
type gateCounts interface {
	// NumAckPending is the consumer's count of messages delivered and not
	// yet acked, by any worker (consumer info's NumAckPending).
	NumAckPending(ctx context.Context) (int, error)
	// Ours is how many messages this partition holds and has not acked
	// yet (an acked one may be out of NumAckPending already), and how many
	// messages it has acked so far (a running total).
	Ours() (held int, acks uint64)
}

// gate holds a partition's lanes back until no other worker holds any of
// the partition's messages. Until then another worker (a previous owner
// still finishing, or a dead one whose messages come back after AckWait)
// holds older messages of some waybills, and delivering the newer ones
// first would break their order. The gate is closed when a partition
// starts and closes again whenever JetStream pins the partition to us anew
// (a new pin id on a delivery).
//
// Its state (closed, pin) is guarded by the owner's lock (partition.mu);
// check and watch take no lock of the gate's and may run without it.
type gate struct {
	counts gateCounts
	poll   time.Duration // between two checks while closed
	shut   bool
	pin    string // the pin JetStream gave us, from Nats-Pin-Id
	dseq   uint64 // the consumer's delivery sequence of the last message to us
}

// gatePollDefault is how often a closed gate asks the consumer again.
const gatePollDefault = 100 * time.Millisecond

func newGate(counts gateCounts) *gate {
	return &gate{counts: counts, poll: gatePollDefault, shut: true}
}

// closed reports whether lanes must wait.
func (g *gate) closed() bool { return g.shut }

// open opens the gate; it reports whether it was closed.
func (g *gate) open() bool {
	was := g.shut
	g.shut = false
	return was
}

// pinned records the pin id of a delivery (empty: none). When the pin is
// new and the gate is open and mayClose, the gate closes and pinned
// reports true: the caller must then watch it until it opens. A pin that
// arrives while the gate is closed anyway only is recorded: the watch in
// progress covers it.
func (g *gate) pinned(id string, mayClose bool) (watch bool) {
	if id == "" || id == g.pin {
		return false
	}
	g.pin = id
	if g.shut || !mayClose {
		return false
	}
	g.shut = true
	return true
}

// gap takes the consumer's delivery sequence of a message: deliveries of
// a consumer are numbered one by one, and all go to the pinned client, so
// a jump means deliveries to us went missing in transit (a connection lost
// with a node). The messages missing are out to no one who will settle
// them; JetStream gives them again after AckWait, and a later event of
// their waybill must not be delivered before them. A jump closes the gate
// when it is open and reports true (the caller watches it, as for a new
// pin); the watch opens it once nothing of the partition is out elsewhere,
// that is once the missing ones came back to us.
func (g *gate) gap(dseq uint64) (watch bool) {
	last := g.dseq
	g.dseq = dseq
	if last == 0 || dseq <= last+1 || g.shut {
		return false // the first, the next, a new leader's numbering, or closed anyway
	}
	g.shut = true
	return true
}

// pinID is the last pin id seen, "" before the first pinned delivery.
func (g *gate) pinID() string { return g.pin }

// check asks once whether the gate may open. The consumer's unacked count
// N is compared with a lower bound of how many of those are ours: what we
// held and had not acked before asking, less every ack we sent meanwhile
// (lanes finish what they had started). Messages that reach us meanwhile are not counted,
// since N may predate them. N <= ours then means no one else holds
// anything; any error in the bound only keeps the gate closed a while
// longer. An error asking keeps it closed too.
func (g *gate) check(ctx context.Context) (bool, error) {
	held0, acks0 := g.counts.Ours()
	n, err := g.counts.NumAckPending(ctx)
	if err != nil {
		return false, err
	}
	_, acks1 := g.counts.Ours()
	return n <= held0-int(acks1-acks0), nil
}

// watch checks every poll, each check bounded by askTimeout, until check
// says the gate may open (it returns true) or ctx ends (false). It does not
// open the gate: the caller does, under its lock.
func (g *gate) watch(ctx context.Context, askTimeout time.Duration) bool {
	t := time.NewTicker(g.poll)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, askTimeout)
		ok, _ := g.check(actx)
		cancel()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
