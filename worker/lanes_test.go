package worker

import (
	"fmt"
	"slices"
	"testing"
)

// laneOp is one step a partition takes on its lanes.
type laneOp struct {
	do      string // "add" (a delivery), "claim" (a goroutine takes the lane), "settle" (its head is done)
	waybill string
	seq     uint64
	name    string // the delivery, for "add"
}

func add(waybill string, seq uint64, name string) laneOp {
	return laneOp{do: "add", waybill: waybill, seq: seq, name: name}
}
func claim(waybill string) laneOp  { return laneOp{do: "claim", waybill: waybill} }
func settle(waybill string) laneOp { return laneOp{do: "settle", waybill: waybill} }

// apply runs ops on l and returns how many adds were merged.
func apply(t *testing.T, l *lanes, ops []laneOp) (merged int) {
	t.Helper()
	for _, op := range ops {
		switch op.do {
		case "add":
			h := &held{msg: kept{reply: op.name}, seq: op.seq, waybill: op.waybill, subject: "logistics.trace." + op.waybill}
			if l.hold(h) {
				merged++
				continue
			}
			l.enqueue(h)
		case "claim":
			if !l.claim(l.byWaybill[op.waybill]) {
				t.Fatalf("claim %s: lane already running or empty", op.waybill)
			}
		case "settle":
			l.settled(l.byWaybill[op.waybill])
		}
	}
	return merged
}

// queues shows each lane as its sequences with the delivery held for each.
func queues(l *lanes) map[string][]string {
	out := map[string][]string{}
	for w, ln := range l.byWaybill {
		for _, h := range ln.queue {
			out[w] = append(out[w], fmt.Sprintf("%d:%s", h.seq, h.msg.reply))
		}
	}
	return out
}

func TestLanesOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ops    []laneOp
		want   map[string][]string
		merged int
	}{
		{"stream order", []laneOp{add("A", 1, "a"), add("A", 2, "a"), add("A", 3, "a")},
			map[string][]string{"A": {"1:a", "2:a", "3:a"}}, 0},
		{"one lane per waybill", []laneOp{add("A", 1, "a"), add("B", 2, "a"), add("A", 3, "a")},
			map[string][]string{"A": {"1:a", "3:a"}, "B": {"2:a"}}, 0},
		{"late redelivery goes before newer ones of its waybill",
			[]laneOp{add("A", 5, "a"), add("A", 6, "a"), add("B", 4, "a"), add("A", 3, "a")},
			map[string][]string{"A": {"3:a", "5:a", "6:a"}, "B": {"4:a"}}, 0},
		{"late redelivery between two held",
			[]laneOp{add("A", 2, "a"), add("A", 9, "a"), add("A", 5, "a")},
			map[string][]string{"A": {"2:a", "5:a", "9:a"}}, 0},
		{"the running head is never displaced",
			[]laneOp{add("A", 5, "a"), add("A", 6, "a"), claim("A"), add("A", 3, "a")},
			map[string][]string{"A": {"5:a", "3:a", "6:a"}}, 0},
		{"the running head alone is never displaced",
			[]laneOp{add("A", 5, "a"), claim("A"), add("A", 3, "a")},
			map[string][]string{"A": {"5:a", "3:a"}}, 0},
		{"a redelivery of a held message replaces it in its place",
			[]laneOp{add("A", 4, "a"), add("A", 5, "a"), add("A", 6, "a"), add("A", 5, "b")},
			map[string][]string{"A": {"4:a", "5:b", "6:a"}}, 1},
		{"the newest delivery wins",
			[]laneOp{add("A", 4, "a"), add("A", 4, "b"), add("A", 4, "c")},
			map[string][]string{"A": {"4:c"}}, 2},
		{"a redelivery of the running head replaces it",
			[]laneOp{add("A", 4, "a"), add("A", 5, "a"), claim("A"), add("A", 4, "b")},
			map[string][]string{"A": {"4:b", "5:a"}}, 1},
		{"settled head leaves; a later delivery of it is new",
			[]laneOp{add("A", 4, "a"), add("A", 5, "a"), claim("A"), settle("A"), add("A", 4, "b")},
			map[string][]string{"A": {"5:a", "4:b"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLanes()
			merged := apply(t, l, tc.ops)
			if got := queues(l); !mapsEqual(got, tc.want) {
				t.Fatalf("lanes %v, want %v", got, tc.want)
			}
			if merged != tc.merged {
				t.Fatalf("%d merged, want %d", merged, tc.merged)
			}
			heldN := 0
			for _, q := range tc.want {
				heldN += len(q)
			}
			if n, lanesN := l.counts(); n != heldN || lanesN != len(tc.want) {
				t.Fatalf("counts %d held, %d lanes; want %d, %d", n, lanesN, heldN, len(tc.want))
			}
		})
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestLanesHandBackOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ops  []laneOp
		want []string // seq:delivery, in the order handed back
	}{
		{"nothing held", nil, []string{}},
		{"every held message in stream order across waybills",
			[]laneOp{add("B", 7, "a"), add("A", 3, "a"), add("C", 9, "a"), add("A", 8, "a"), add("B", 1, "a")},
			[]string{"1:a", "3:a", "7:a", "8:a", "9:a"}},
		{"a running head behind which an older one came back",
			[]laneOp{add("A", 5, "a"), claim("A"), add("A", 3, "a"), add("A", 6, "a")},
			[]string{"3:a", "5:a", "6:a"}},
		{"settled messages are not handed back",
			[]laneOp{add("A", 1, "a"), add("A", 2, "a"), add("B", 3, "a"), claim("A"), settle("A")},
			[]string{"2:a", "3:a"}},
		{"a merged redelivery is handed back once, as its newest delivery",
			[]laneOp{add("A", 1, "a"), add("A", 2, "a"), add("A", 1, "b")},
			[]string{"1:b", "2:a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLanes()
			apply(t, l, tc.ops)
			got := []string{}
			for _, h := range l.takeAll() {
				got = append(got, fmt.Sprintf("%d:%s", h.seq, h.msg.reply))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("handed back %v, want %v", got, tc.want)
			}
			if n, lanesN := l.counts(); n != 0 || lanesN != 0 {
				t.Fatalf("after hand-back %d held, %d lanes; want none", n, lanesN)
			}
		})
	}
}

func TestLaneLifecycle(t *testing.T) {
	t.Parallel()
	l := newLanes()
	apply(t, l, []laneOp{add("A", 1, "a"), add("A", 2, "a")})
	ln := l.byWaybill["A"]
	if !l.claim(ln) || l.claim(ln) {
		t.Fatal("a lane with work must be claimed exactly once")
	}
	if h := l.head(ln); h == nil || h.seq != 1 {
		t.Fatalf("head %+v, want seq 1", h)
	}
	l.settled(ln)
	l.park(ln) // released with work left: the lane stays, idle
	if ln.running || l.byWaybill["A"] != ln {
		t.Fatal("a parked lane with work must stay, not running")
	}
	if !l.claim(ln) {
		t.Fatal("a parked lane with work must be claimable again")
	}
	l.settled(ln)
	if l.head(ln) != nil {
		t.Fatal("head of an empty lane")
	}
	l.park(ln)
	if _, ok := l.byWaybill["A"]; ok || l.claim(ln) {
		t.Fatal("an empty lane must be forgotten and not claimable")
	}
	if n, lanesN := l.counts(); n != 0 || lanesN != 0 {
		t.Fatalf("%d held, %d lanes after settling everything", n, lanesN)
	}
}

// TestLanesMergeMarksRedelivered: a redelivery merged into a held message
// marks it redelivered, so its lane asks whether another holder settled
// it (settledElsewhere) even though its first delivery was not one.
func TestLanesMergeMarksRedelivered(t *testing.T) {
	t.Parallel()
	l := newLanes()
	first := &held{msg: kept{reply: "first"}, seq: 7, waybill: "W"}
	if l.hold(first) {
		t.Fatal("the first delivery merged")
	}
	l.enqueue(first)
	if first.redelivered {
		t.Fatal("a first delivery counts as redelivered")
	}
	if !l.hold(&held{msg: kept{reply: "again"}, seq: 7, waybill: "W", redelivered: true}) {
		t.Fatal("the redelivery did not merge")
	}
	if !first.redelivered || first.msg.reply != "again" {
		t.Fatalf("after the merge: %+v, want the newest delivery, redelivered", first)
	}
}
