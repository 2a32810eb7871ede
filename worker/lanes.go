package worker

import (
	"cmp"
	"slices"
	"time"
)

// held is one message this worker has taken from JetStream and not yet
// settled (acked, dead-lettered or handed back).
type held struct {
	msg     kept   // the newest delivery; guarded by partition.mu
	seq     uint64 // stream sequence: the message's identity
	subject string
	waybill string
	// published is when JetStream stored the message (from the first
	// delivery's metadata; a redelivery has the same).
	published time.Time
	// redelivered: the newest delivery is not the first (from its
	// metadata, read once in handle); guarded by partition.mu. Only then
	// can it be an event another holder settled and lost the ack of.
	redelivered bool
	// acked: an ack of it was sent (guarded by partition.mu). The
	// consumer may count it out of its pending already, so the takeover
	// gate no longer counts it as ours.
	acked bool
	// late: settled after a later event of its waybill (staleConfirmed);
	// its Settlement says so.
	late bool
	// backlog is how many messages of its lane waited behind it when it
	// became the lane's head (set by the lane's runner, under the
	// partition's lock): its claim to a call slot (callSlots).
	backlog int
}

// lane is the FIFO of one waybill's held messages, in stream order.
// Exactly one goroutine works a lane at a time (running); it stops when
// the lane is empty, so idle waybills cost nothing.
type lane struct {
	waybill string
	queue   []*held
	running bool
}

// lanes is what one partition holds: every held message by stream
// sequence, and the lanes of the waybills that have work. It is a plain
// structure: it starts no goroutine, calls nothing on a message, and is not
// safe for concurrent use. Its owner guards it with its own lock
// (partition.mu), which also guards held.msg, so that a settle in progress
// and a redelivery being merged agree on the newest delivery.
type lanes struct {
	byWaybill map[string]*lane
	bySeq     map[uint64]*held
}

func newLanes() *lanes {
	return &lanes{byWaybill: make(map[string]*lane), bySeq: make(map[uint64]*held)}
}

// hold records h as held. If a message with its sequence is held already
// (JetStream redelivered it because a keep-alive was late), the newest
// delivery replaces the held one, which keeps its place in its lane, and
// hold reports the merge: the caller must not queue h.
func (l *lanes) hold(h *held) (merged bool) {
	if old, ok := l.bySeq[h.seq]; ok {
		old.msg, old.redelivered = h.msg, true
		return true
	}
	l.bySeq[h.seq] = h
	return false
}

// enqueue files a held message into its waybill's lane in stream order and
// returns the lane. A message can arrive after newer ones of its waybill
// (while the gate is closed, one a previous owner held comes back late);
// it goes before them, but never before a head that is running: that one
// is being delivered, and what follows it must wait for it.
func (l *lanes) enqueue(h *held) *lane {
	ln, ok := l.byWaybill[h.waybill]
	if !ok {
		ln = &lane{waybill: h.waybill}
		l.byWaybill[h.waybill] = ln
	}
	i := len(ln.queue)
	for i > 0 && ln.queue[i-1].seq > h.seq && (i > 1 || !ln.running) {
		i--
	}
	ln.queue = slices.Insert(ln.queue, i, h)
	return ln
}

// claim marks ln as running if it has work and no goroutine works it yet;
// it reports whether the caller must start one.
func (l *lanes) claim(ln *lane) bool {
	if ln.running || len(ln.queue) == 0 {
		return false
	}
	ln.running = true
	return true
}

// all lists every lane, for opening the gate.
func (l *lanes) all() []*lane {
	out := make([]*lane, 0, len(l.byWaybill))
	for _, ln := range l.byWaybill {
		out = append(out, ln)
	}
	return out
}

// head is the message the lane delivers next, or nil if it is empty.
func (l *lanes) head(ln *lane) *held {
	if len(ln.queue) == 0 {
		return nil
	}
	return ln.queue[0]
}

// settled removes the lane's head once it is acked or dead-lettered: it is
// no longer held.
func (l *lanes) settled(ln *lane) {
	h := ln.queue[0]
	ln.queue[0] = nil
	ln.queue = ln.queue[1:]
	delete(l.bySeq, h.seq)
}

// park marks ln as no longer worked; an empty lane is forgotten.
func (l *lanes) park(ln *lane) {
	ln.running = false
	if len(ln.queue) == 0 && l.byWaybill[ln.waybill] == ln {
		delete(l.byWaybill, ln.waybill)
	}
}

// msgs appends the newest delivery of every held message to dst, for the
// keep-alive.
func (l *lanes) msgs(dst []kept) []kept {
	for _, h := range l.bySeq {
		dst = append(dst, h.msg)
	}
	return dst
}

// takeAll empties l and returns every held message in stream-sequence
// order, the order hand-back must return them in (see handBack).
func (l *lanes) takeAll() []*held {
	hs := make([]*held, 0, len(l.bySeq))
	for _, h := range l.bySeq {
		hs = append(hs, h)
	}
	clear(l.bySeq)
	clear(l.byWaybill)
	slices.SortFunc(hs, func(a, b *held) int { return cmp.Compare(a.seq, b.seq) })
	return hs
}

// counts is how many messages are held and how many lanes have work.
func (l *lanes) counts() (heldN, lanesN int) { return len(l.bySeq), len(l.byWaybill) }
