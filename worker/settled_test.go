package worker

import "testing"

func TestSettledSeqs(t *testing.T) {
	t.Parallel()
	s := newSettledSeqs(2)
	steps := []struct {
		op      string // "note" or "stale"
		waybill string
		seq     uint64
		want    bool
	}{
		{"stale", "A", 5, false}, // nothing settled yet
		{"note", "A", 5, false},
		{"stale", "A", 5, false}, // the same event, not older: a merge handles it
		{"stale", "A", 4, true},
		{"stale", "A", 6, false},
		{"note", "A", 7, false},
		{"note", "A", 6, false}, // never goes back
		{"stale", "A", 6, true},
		{"note", "B", 3, false},
		{"stale", "B", 2, true},
		{"note", "C", 9, false}, // the third waybill: A and B move to the older generation
		{"stale", "A", 6, true},
		{"stale", "B", 2, true},
		{"note", "D", 1, false},
		{"note", "E", 1, false}, // A and B are forgotten
		{"stale", "A", 6, false},
		{"stale", "C", 8, true},
	}
	for i, st := range steps {
		switch st.op {
		case "note":
			s.note(st.waybill, st.seq)
		case "stale":
			if got := s.stale(st.waybill, st.seq); got != st.want {
				t.Fatalf("step %d: stale(%s, %d) = %v, want %v", i, st.waybill, st.seq, got, st.want)
			}
		}
	}
}
