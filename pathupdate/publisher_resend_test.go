package pathupdate

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackHolder is a TCP relay between a NATS client and its server that can
// hold back what the server says (PubAcks among it) while it counts the
// publishes (HPUB) the client sends: a server slow to answer, made to
// order.
type ackHolder struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	held    bool
	release *sync.Cond
	hpubs   atomic.Int64
	counted chan struct{} // a signal after each read that counted publishes
}

func startAckHolder(t *testing.T, target string) *ackHolder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &ackHolder{ln: ln, target: target, counted: make(chan struct{}, 1)}
	h.release = sync.NewCond(&h.mu)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Go(func() { h.count(up, c); _ = up.Close() })
			wg.Go(func() { h.relayHeld(c, up); _ = c.Close() })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); h.hold(false); wg.Wait() })
	return h
}

func (h *ackHolder) url() string { return "nats://" + h.ln.Addr().String() }

func (h *ackHolder) hold(on bool) {
	h.mu.Lock()
	h.held = on
	h.mu.Unlock()
	h.release.Broadcast()
}

// count relays client to server, counting HPUB operations.
func (h *ackHolder) count(dst io.WriteCloser, src io.ReadCloser) {
	defer src.Close()
	buf := make([]byte, 32<<10)
	var tail []byte // the last bytes of the previous read: an op split across two
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen := append(tail, buf[:n]...)
			if n := bytes.Count(seen, []byte("HPUB ")); n > 0 {
				h.hpubs.Add(int64(n))
				select {
				case h.counted <- struct{}{}:
				default: // a signal is pending already
				}
			}
			// Four bytes cannot hold a whole "HPUB ": none is counted twice.
			tail = append(tail[:0], seen[max(0, len(seen)-4):]...)
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// relayHeld relays server to client, waiting while held.
func (h *ackHolder) relayHeld(dst io.WriteCloser, src io.ReadCloser) {
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			h.mu.Lock()
			for h.held {
				h.release.Wait()
			}
			h.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestPublishLinesSendsAgainAfterLatePubAck: the server stores the first
// event of each waybill but its PubAcks are held back past AckTimeout.
// PublishLines sends each again (same Nats-Msg-Id) instead of failing it
// and holding back the rest of its waybill; once the answers flow every
// event is stored once, in order, and counted accepted.
func TestPublishLinesSendsAgainAfterLatePubAck(t *testing.T) {
	t.Parallel()
	s, direct := startJetStreamForTopology(t)
	ctx := jsTestCtx(t)
	if err := EnsureStreams(ctx, direct, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	holder := startAckHolder(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	nc, err := nats.Connect(holder.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(js, PublisherConfig{AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}

	const waybills, steps = 10, 5
	var in bytes.Buffer
	for step := range steps {
		for w := range waybills {
			in.Write(publisherTestEvent(string(rune('A'+w))+"X1", step+1).Encode())
			in.WriteByte('\n')
		}
	}
	holder.hold(true)
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := p.PublishLines(context.Background(), &in, nil)
		done <- result{sum, err}
	}()

	// Each waybill's first event sent, then sent again once its PubAck
	// was late: twice the waybills in publishes before any answer.
	timeout := time.After(30 * time.Second)
	for holder.hpubs.Load() < 2*waybills {
		select {
		case <-holder.counted:
		case <-timeout:
			holder.hold(false)
			t.Fatalf("%d publishes while the PubAcks were held, want %d: no event was sent again", holder.hpubs.Load(), 2*waybills)
		}
	}
	holder.hold(false)

	r := <-done
	if r.err != nil || r.sum.Accepted != waybills*steps || r.sum.Failed != 0 || r.sum.Duplicates != 0 {
		t.Fatalf("summary %+v, err %v: want all %d accepted, none failed or duplicate", r.sum, r.err, waybills*steps)
	}
	if n := traceMsgs(t, direct); n != waybills*steps {
		t.Errorf("stream holds %d messages, want %d: a second send was stored twice", n, waybills*steps)
	}
	assertStreamOrder(t, direct, waybills, steps)
}

// assertStreamOrder reads the trace stream back and checks each waybill's
// events are stored once each, steps 1 to steps in order.
func assertStreamOrder(t *testing.T, js jetstream.JetStream, waybills, steps int) {
	t.Helper()
	ctx := jsTestCtx(t)
	st, err := js.Stream(ctx, TraceStream)
	if err != nil {
		t.Fatal(err)
	}
	next := make(map[string]int64, waybills)
	for seq := uint64(1); seq <= uint64(waybills*steps); seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		ev, err := DecodeEvent(m.Data)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		want := next[ev.WaybillID] + 1
		if got := ev.ActionTime - 1_700_000_000; got != want {
			t.Errorf("seq %d: waybill %s step %d, want step %d", seq, ev.WaybillID, got, want)
		}
		next[ev.WaybillID] = want
	}
}
