package worker

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// A partition's pin can move while this worker still holds messages of it.
// JetStream keeps the pin in the consumer leader's memory only: when the
// leader changes (a node lost), the new leader pins whichever pull request
// it serves first, and while membership views differ (a worker's entry
// expired during the same outage) that can be another worker's. The new
// leader may also not know of the last deliveries the old one made, so the
// takeover gate of the new holder does not count them, and it receives
// them again as first deliveries. Were this worker to go on delivering what
// it holds, both would call WeChat for the same waybills at once, and an
// older step could reach WeChat after a newer one.
//
// So every partition listens to its consumer's "pinned" advisory (sent by
// the leader whenever it gives the pin to a client). A pin that is not
// ours stops the partition's lanes before their next call; if no delivery
// with that pin reaches us within pinConfirmWait, the pin is another
// worker's and the partition is released: what it holds is handed back to
// the new holder, in order, and the membership loop takes the partition
// again if it is still ours. A pull refused for a mismatched pin id means
// the same. What a lane was calling when the pin moved is the one call
// that can still overlap the new holder's.

// pinnedAdvisoryPrefix is the subject prefix of JetStream's advisory that a
// consumer's priority group was pinned to a client; the stream and
// consumer names follow.
const pinnedAdvisoryPrefix = "$JS.EVENT.ADVISORY.CONSUMER.PINNED."

// PinnedAdvisories are the subjects a worker subscribes to for the pin
// moves of its partitions. A NATS user not allowed to subscribe to them
// still works: the server refuses the subscription (an asynchronous
// permissions violation the caller may log and otherwise ignore), and a
// moved pin is noticed when a pull is refused, seconds later instead of at
// once.
const PinnedAdvisories = pinnedAdvisoryPrefix + ">"

// IsPinnedAdvisoriesRefusal reports whether err is the server refusing
// this worker's subscription to PinnedAdvisories.
func IsPinnedAdvisoriesRefusal(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), pinnedAdvisoryPrefix)
}

// pinConfirmWait is how long a pin we did not recognise may take to show
// on a delivery to us before we take it for another worker's. The leader
// pins a request as it sends it a message, so our own pin shows at once.
const pinConfirmWait = 2 * time.Second

// pinnedAdvisory is the part of the advisory the partition reads.
type pinnedAdvisory struct {
	Group    string `json:"group"`
	PinnedID string `json:"pinned_id"`
}

// watchPins subscribes to the partition's pinned advisories on nc.
func (p *partition) watchPins(nc *nats.Conn) (*nats.Subscription, error) {
	subject := pinnedAdvisoryPrefix + pathupdate.TraceStream + "." + p.consumer
	return nc.Subscribe(subject, func(m *nats.Msg) {
		var adv pinnedAdvisory
		if json.Unmarshal(m.Data, &adv) != nil || adv.PinnedID == "" || adv.Group != PriorityGroup {
			return
		}
		p.pinAdvised(adv.PinnedID)
	})
}

// pinAdvised takes the news that the consumer pinned id. Our current pin
// changes nothing; any other stops the lanes until a delivery shows it is
// ours, or pinConfirmWait shows it is not.
func (p *partition) pinAdvised(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || id == p.gate.pinID() {
		return
	}
	p.pinMoved = id
	time.AfterFunc(pinConfirmWait, func() { p.pinUnconfirmed(id) })
}

// pinUnconfirmed runs pinConfirmWait after the advisory of pin id: if no
// delivery carried it meanwhile, it is another worker's, and what this
// partition holds goes back to JetStream.
func (p *partition) pinUnconfirmed(id string) {
	p.mu.Lock()
	if p.pinMoved != id || p.stopping {
		p.mu.Unlock()
		return // ours after all, or a later pin is being waited for
	}
	heldN, _ := p.lanes.counts()
	if heldN == 0 {
		// Nothing held, nothing to hand over: a later delivery to us
		// carries its pin, and the takeover gate handles it.
		p.pinMoved = ""
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.w.evict(p, "the partition's pin moved to another worker")
}

// pinRefused takes a pull refused for a mismatched pin id: another client
// holds the pin we had.
func (p *partition) pinRefused() {
	p.mu.Lock()
	had := p.gate.pinID() != ""
	heldN, _ := p.lanes.counts()
	stopping := p.stopping
	p.mu.Unlock()
	if had && heldN > 0 && !stopping {
		p.w.evict(p, "a pull was refused: another worker holds the partition's pin")
	}
}

// evict releases p, which lost its pin while holding messages, and drops
// it from the partitions held; the membership loop starts it again while
// it is still this worker's. Stop waits for the release.
func (w *Worker) evict(p *partition, why string) {
	w.mu.Lock()
	if w.parts[p.n] != p {
		w.mu.Unlock()
		return // released already, or being released
	}
	delete(w.parts, p.n)
	w.evicting.Add(1)
	w.mu.Unlock()
	w.stats.pinsLost.Add(1)
	go func() {
		defer w.evicting.Done()
		n := p.release(w.cfg.ShutdownTimeout)
		p.log.Warn().Int("handed_back", n).Str("why", why).Msg("partition released: its pin moved while this worker held messages of it")
	}()
}
