package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/demo"
)

func TestDemoDeliversEverythingInOrder(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, err := demo.Run(context.Background(), demo.Config{Waybills: 80, EventsPerWaybill: 6, SystemErrorRate: 0.2, Seed: 7}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if s.GoodWaybills == 0 || s.InOrder != s.GoodWaybills {
		t.Fatalf("%d of %d good waybills in order", s.InOrder, s.GoodWaybills)
	}
	if s.Delivered != s.GoodWaybills*6 {
		t.Fatalf("delivered %d, want %d", s.Delivered, s.GoodWaybills*6)
	}
	if s.Retries == 0 {
		t.Fatal("no retries at a 20% -1 rate")
	}
	if s.DeadLetters["invalid_event"] == 0 || s.DeadLetters["rejected/40199"]+s.DeadLetters["rejected/9300507"] == 0 {
		t.Fatalf("dead letters %v: the sample traffic has rejections and malformed messages", s.DeadLetters)
	}
	for _, want := range []string{"delivered", "dead-lettered", "every trace arrived complete and in order"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
