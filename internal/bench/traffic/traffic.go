// Package traffic makes the benchmark traffic of pathupdate's harness and
// of its peer (bench/peer): waybill trace events in the order a dispatch
// system would publish them, and the per-waybill order check read from the
// sandbox's record. Both programs build the same events from the same seed,
// so ours and the peer deliver exactly the same job.
//
// It must not measure anything or talk to NATS: it only makes events and
// judges what the sandbox received.
package traffic

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// Shape is how events are spread over waybills.
type Shape string

// Shapes.
const (
	// Uniform gives every waybill the same number of events. A waybill's
	// events follow each other at random distances averaging GapDefault
	// positions in the stream: a busy feed where a parcel's steps arrive
	// close enough together that a pipeline running several of them at
	// once can reorder them.
	Uniform Shape = "uniform"
	// Zipf draws each event's waybill from a Zipf distribution
	// (math/rand/v2, s = ZipfS, v = ZipfV): a few very hot waybills.
	Zipf Shape = "zipf"
)

// Defaults of Spec.
const (
	GapDefault = 200
	ZipfS      = 1.1
	ZipfV      = 10.0
	// ActionTimeBase is the action_time of every waybill's first event;
	// event i has ActionTimeBase + i*ActionTimeStep, so the sandbox's
	// record tells each call's index within its waybill.
	ActionTimeBase = int64(1_767_225_600) // 2026-01-01 UTC
	ActionTimeStep = int64(60)
)

// Spec describes a traffic plan.
type Spec struct {
	Shape    Shape
	Waybills int    // the waybill universe
	Events   int    // events in all
	Gap      int    // Uniform: mean distance between a waybill's events; default GapDefault
	Seed     uint64 // same seed, same plan
}

// Item is one event of a plan, in stream order.
type Item struct {
	Waybill int // index into Plan.Waybills
	Index   int // 0-based position within its waybill
}

// Plan is the events of a Spec in the order they are published.
type Plan struct {
	Spec     Spec
	Waybills []string // waybill ids
	Counts   []int    // events per waybill
	Items    []Item   // stream order
}

// WaybillID is the id of waybill i: BW followed by six digits.
func WaybillID(i int) string { return fmt.Sprintf("BW%06d", i) }

// steps of a parcel; the events cycle through them.
var steps = []struct {
	t   pathupdate.ActionType
	msg string
}{
	{pathupdate.ActionPickedUp, "快递员已揽件"},
	{pathupdate.ActionCourierAssigned, "已分配业务员 张三 13800138000"},
	{pathupdate.ActionInTransit, "快件已到达 深圳转运中心"},
	{pathupdate.ActionInTransit, "快件已发往 上海转运中心"},
	{pathupdate.ActionOutForDelivery, "快件正在派送中"},
	{pathupdate.ActionSigned, "已签收，签收人：本人"},
}

// Event is event index of waybill w (as Plan.Waybills names it).
func Event(waybill string, index int) pathupdate.Event {
	s := steps[index%len(steps)]
	return pathupdate.Event{
		Token:      "tok-" + waybill + "-0123456789abcdef",
		WaybillID:  waybill,
		ActionTime: ActionTimeBase + int64(index)*ActionTimeStep,
		ActionType: s.t,
		ActionMsg:  fmt.Sprintf("%s (#%d)", s.msg, index+1),
	}
}

// IndexOf is the index within its waybill of an event with actionTime.
func IndexOf(actionTime int64) int { return int((actionTime - ActionTimeBase) / ActionTimeStep) }

// New builds the plan of s.
func New(s Spec) (*Plan, error) {
	if s.Waybills < 1 || s.Events < 1 {
		return nil, fmt.Errorf("traffic: need at least one waybill and one event, got %d and %d", s.Waybills, s.Events)
	}
	if s.Gap == 0 {
		s.Gap = GapDefault
	}
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	p := &Plan{Spec: s, Waybills: make([]string, s.Waybills), Counts: make([]int, s.Waybills)}
	for i := range p.Waybills {
		p.Waybills[i] = WaybillID(i)
	}
	switch s.Shape {
	case Uniform:
		p.Items = uniform(rng, s, p.Counts)
	case Zipf:
		z := rand.NewZipf(rng, ZipfS, ZipfV, uint64(s.Waybills-1))
		p.Items = make([]Item, s.Events)
		for i := range p.Items {
			w := int(z.Uint64())
			p.Items[i] = Item{Waybill: w, Index: p.Counts[w]}
			p.Counts[w]++
		}
	default:
		return nil, fmt.Errorf("traffic: shape %q: use %q or %q", s.Shape, Uniform, Zipf)
	}
	return p, nil
}

// uniform spreads Events over Waybills evenly: each waybill starts at a
// random time in [0, 1) and its next events follow at exponential gaps
// whose mean is Gap stream positions; the stream is every event sorted by
// time.
func uniform(rng *rand.Rand, s Spec, counts []int) []Item {
	type timed struct {
		at float64
		it Item
	}
	all := make([]timed, 0, s.Events)
	meanGap := float64(s.Gap) / float64(s.Events)
	for w := range s.Waybills {
		n := s.Events / s.Waybills
		if w < s.Events%s.Waybills {
			n++
		}
		counts[w] = n
		at := rng.Float64()
		for i := range n {
			all = append(all, timed{at, Item{Waybill: w, Index: i}})
			at += rng.ExpFloat64() * meanGap
		}
	}
	slices.SortFunc(all, func(a, b timed) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return a.it.Index - b.it.Index // equal times keep a waybill's order
	})
	out := make([]Item, len(all))
	for i, t := range all {
		out[i] = t.it
	}
	return out
}

// Event is the i-th event of the plan in stream order.
func (p *Plan) Event(i int) pathupdate.Event {
	it := p.Items[i]
	return Event(p.Waybills[it.Waybill], it.Index)
}

// Lines is the plan as JSON lines (Event.Encode, one a line), the input of
// Publisher.PublishLines and `pathupdate publish --file`.
func (p *Plan) Lines() []byte {
	var b bytes.Buffer
	for i := range p.Items {
		b.Write(p.Event(i).Encode())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ByWaybill is the same events with each waybill's together, in its
// order, waybills by first appearance: the input of a per-parcel export.
func (p *Plan) ByWaybill() *Plan {
	first := make(map[int]int, len(p.Waybills))
	for i, it := range p.Items {
		if _, seen := first[it.Waybill]; !seen {
			first[it.Waybill] = i
		}
	}
	q := *p
	q.Items = slices.Clone(p.Items)
	slices.SortStableFunc(q.Items, func(a, b Item) int { return first[a.Waybill] - first[b.Waybill] })
	return &q
}

// MaxPerWaybill is the largest number of events any one waybill has: they
// are delivered one after another, so at latency L the job takes at least
// MaxPerWaybill * L.
func (p *Plan) MaxPerWaybill() int { return slices.Max(p.Counts) }

// LittleBound is the most events per second concurrency calls of latency
// seconds each can deliver (Little's law).
func LittleBound(concurrency int, latencySeconds float64) float64 {
	return float64(concurrency) / latencySeconds
}

// KeyBound is the most events per second the plan allows at concurrency
// calls of latencySeconds each, also counting that a waybill's events go
// one at a time: the job takes at least max(Events*L/concurrency,
// MaxPerWaybill*L).
func (p *Plan) KeyBound(concurrency int, latencySeconds float64) float64 {
	least := math.Max(float64(len(p.Items))*latencySeconds/float64(concurrency), float64(p.MaxPerWaybill())*latencySeconds)
	return float64(len(p.Items)) / least
}

// LineReader streams JSON lines of n events over waybills waybills
// (round-robin, waybill i's k-th event is index k) without holding them
// all: the million-event backlog of the memory scenario.
func LineReader(waybills, n int) io.Reader {
	return &lineReader{waybills: waybills, n: n}
}

type lineReader struct {
	waybills, n, i int
	buf            []byte
}

func (r *lineReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.i >= r.n {
			return 0, io.EOF
		}
		w := r.i % r.waybills
		r.buf = append(Event(WaybillID(w), r.i/r.waybills).Encode(), '\n')
		r.i++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
