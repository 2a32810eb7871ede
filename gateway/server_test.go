package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

func newPublisher(t *testing.T) *pathupdate.Publisher {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	pub, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	pub := newPublisher(t)
	if _, err := gateway.NewServer(pub, gateway.Config{}); err == nil || !strings.Contains(err.Error(), "Token") {
		t.Fatalf("a server without a token: %v, want a refusal naming Token", err)
	}
	if _, err := gateway.NewServer(nil, gateway.Config{Token: testToken}); err == nil {
		t.Fatal("a server without a publisher was made")
	}

	never, err := gateway.NewServer(pub, gateway.Config{Token: testToken, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Shutdown(context.Background()); err != nil || never.URL() != "" {
		t.Fatalf("shutdown of a server never started: %v, URL %q", err, never.URL())
	}
	if err := never.Start(context.Background()); err == nil {
		t.Fatal("a shut-down server started")
	}

	s, err := gateway.NewServer(pub, gateway.Config{Token: testToken, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("started twice")
	}
	taken, err := gateway.NewServer(pub, gateway.Config{Token: testToken, Addr: s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := taken.Start(context.Background()); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Fatalf("listening on a taken address: %v, want an error naming it", err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	<-s.Done()
	if s.Err() != nil {
		t.Fatalf("Err after a shutdown: %v", s.Err())
	}
	if _, err := http.Get(s.URL() + gateway.Path); err == nil {
		t.Fatal("still serving after Shutdown")
	}
}

// TestShutdownWaitsForRequestsInProgress: a request being published when
// Shutdown begins is answered; Shutdown returns after it.
func TestShutdownWaitsForRequestsInProgress(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	connected := func() bool { // called once per event: holds the one request
		if first {
			first = false
			close(entered)
			<-release
		}
		return true
	}
	s, err := gateway.NewServer(newPublisher(t), gateway.Config{Token: testToken, Addr: "127.0.0.1:0", Connected: connected})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+gateway.Path, strings.NewReader(event("SHUT", 1)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		res.Body.Close()
		answered <- answer{code: res.StatusCode}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	// Shutdown has begun once new connections are refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(s.URL() + "/")
		if err != nil {
			break
		}
		res.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("Shutdown never stopped accepting connections")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a request was in progress", err)
	default:
	}
	close(release)
	if a := <-answered; a.err != nil || a.code != http.StatusOK {
		t.Fatalf("the request in progress got %d, %v; want 200", a.code, a.err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
