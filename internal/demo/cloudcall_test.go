package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/demo"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// TestDemoCloudCall: `pathupdate demo --transport cloudcall` delivers
// everything in order through the sandbox's /tcb/invokecloudfunction.
func TestDemoCloudCall(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, err := demo.Run(context.Background(), demo.Config{Waybills: 40, EventsPerWaybill: 5, SystemErrorRate: 0.2, Seed: 11,
		Transport: pathupdate.TransportCloudCall}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if s.GoodWaybills == 0 || s.InOrder != s.GoodWaybills || s.Delivered != s.GoodWaybills*5 || s.Retries == 0 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(out.String(), "Delivered through the Cloud Call") {
		t.Fatalf("summary does not say the transport:\n%s", out.String())
	}
}
