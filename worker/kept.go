package worker

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// kept is what the worker keeps of one delivery once handle has read its
// metadata: the subject its acks go to, the event's bytes, and the few
// headers read after handle. Holding the jetstream.Msg itself kept
// nats.go's message alive with its parsed header map (the Nats-Msg-Id and
// expected-stream headers every event carries): about 1.5 KB a message,
// most of the worker's live heap with 8 partitions × 512 held
// (docs/benchmarks.md, Memory).
type kept struct {
	reply string      // the ack subject
	data  []byte      // the event as stored
	hdr   nats.Header // only keptHeaders, nil when it has none (most events)
}

// keptHeaders are the headers read after handle: the producer's trace
// context (the call's span, a dead letter's trace) and the replay count
// (a dead letter's Replays).
var keptHeaders = [...]string{pathupdate.TraceParentHeader, pathupdate.TraceStateHeader, deadletter.ReplaysHeader}

// keep takes what the worker needs of m.
func keep(m jetstream.Msg) kept {
	k := kept{reply: m.Reply(), data: m.Data()}
	if all := m.Headers(); len(all) > 0 {
		for _, name := range keptHeaders {
			if v, ok := all[name]; ok {
				if k.hdr == nil {
					k.hdr = make(nats.Header, len(keptHeaders))
				}
				k.hdr[name] = v
			}
		}
	}
	return k
}

// Reply, Data and Headers read as jetstream.Msg's do.
func (k kept) Reply() string        { return k.reply }
func (k kept) Data() []byte         { return k.data }
func (k kept) Headers() nats.Header { return k.hdr }

// inProgressBody is what jetstream.Msg.InProgress sends.
var inProgressBody = []byte("+WPI")

// inProgress tells JetStream k is still being worked on, as
// jetstream.Msg.InProgress does.
func inProgress(nc *nats.Conn, k kept) error { return nc.Publish(k.reply, inProgressBody) }

// nakNow hands k back for redelivery at once, without waiting for the
// server's confirmation (handBack waits for it).
func nakNow(nc *nats.Conn, k kept) error { return nc.Publish(k.reply, handBackNak) }
