package health_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pathupdate/pathupdate/internal/health"
)

func TestDefaultAddrIsLoopback(t *testing.T) {
	t.Parallel()
	addr := health.Config{}.WithDefaults().Addr
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("default address %s is not loopback", addr)
	}
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	s, err := health.NewServer(health.Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" || s.URL() != "" {
		t.Fatalf("Addr %q URL %q before Start, want empty", s.Addr(), s.URL())
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, http.MethodGet, s.URL()+health.PathHealthz); status != 200 {
		t.Fatalf("/healthz: %d", status)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := http.Get(s.URL() + health.PathHealthz); err == nil {
		t.Fatal("still serving after Shutdown")
	}
}

func TestServerNeverStarted(t *testing.T) {
	t.Parallel()
	s, err := health.NewServer(health.Config{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of a never-started server: %v", err)
	}
}

func TestServerAddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	s, err := health.NewServer(health.Config{Addr: addr, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatalf("Start on %s, which is taken, succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("error %q does not name the address %s and the setting", err, addr)
	}
}
