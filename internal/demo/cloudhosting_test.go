package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/demo"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestDemoNoToken: `pathupdate demo --token-source none` delivers
// everything in order through the sandbox playing WeChat Cloud Hosting's
// open-interface service, with retries and rejections, and no token fetch.
func TestDemoNoToken(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, err := demo.Run(context.Background(), demo.Config{Waybills: 40, EventsPerWaybill: 5, SystemErrorRate: 0.2, Seed: 19,
		TokenSource: pathupdate.TokenSourceNone}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if s.GoodWaybills == 0 || s.InOrder != s.GoodWaybills || s.Delivered != s.GoodWaybills*5 || s.Retries == 0 ||
		s.DeadLetters["rejected/40199"]+s.DeadLetters["rejected/9300507"] == 0 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(out.String(), "open-interface service of WeChat Cloud Hosting, played by the sandbox: no access_token on any call, token endpoints called 0 times") {
		t.Fatalf("summary does not say how it delivered:\n%s", out.String())
	}
}
