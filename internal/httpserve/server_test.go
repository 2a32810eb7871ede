package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

func newServer(t *testing.T, h http.HandlerFunc) *Server {
	t.Helper()
	s, err := New(Config{Name: "test", Addr: "127.0.0.1:0", Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func start(t *testing.T, h http.HandlerFunc) *Server {
	t.Helper()
	s := newServer(t, h)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// client has no idle connections, so that each request dials anew.
func get(t *testing.T, url string) (string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Handler: http.HandlerFunc(ok)}, "Addr"},
		{Config{Addr: ":0"}, "Handler"},
		{Config{Addr: ":0", Handler: http.HandlerFunc(ok), IdleTimeout: -1}, "negative"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if c := (Config{}).WithDefaults(); c.ReadHeaderTimeout != ReadHeaderTimeoutDefault {
		t.Errorf("defaults %+v", c)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t, ok)
	if s.Addr() != "" || s.URL() != "" {
		t.Fatalf("before Start: Addr %q URL %q", s.Addr(), s.URL())
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	if body, err := get(t, s.URL()); err != nil || body != "ok" {
		t.Fatalf("GET: %q, %v", body, err)
	}
	for range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	wait(t, s.Done(), "Done")
	if s.Err() != nil {
		t.Fatalf("Err after a stop: %v", s.Err())
	}
	if _, err := get(t, s.URL()); err == nil {
		t.Fatal("still serving after Shutdown")
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after a stop: %v", err)
	}
}

func TestNeverStarted(t *testing.T) {
	t.Parallel()
	s := newServer(t, ok)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after a stop: %v", err)
	}
	select {
	case <-s.Done():
		t.Fatal("Done closed for a server never started")
	default:
	}
}

func TestAddressTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Addr: ln.Addr().String(), Handler: http.HandlerFunc(ok)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		_ = s.Close()
		t.Fatalf("Start on a taken address: %v, want an error naming it", err)
	}
}

// held is a handler that holds each request until release is closed or
// its context ends, and reports how it ended.
type held struct {
	entered chan struct{}
	release chan struct{}
	ended   chan error // nil: released; else the context's error
}

func newHeld() *held {
	return &held{entered: make(chan struct{}, 1), release: make(chan struct{}), ended: make(chan error, 1)}
}

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
		h.ended <- nil
		io.WriteString(w, "answered")
	case <-r.Context().Done():
		h.ended <- r.Context().Err()
		io.WriteString(w, "too late") // must not reach the client
	}
}

// inProgress starts a server whose handler holds requests (held) and
// sends it one, returning once the handler has it.
func inProgress(t *testing.T) (*held, *Server, <-chan error) {
	t.Helper()
	h := newHeld()
	s := start(t, h.ServeHTTP)
	answered := request(t, s.URL())
	wait(t, h.entered, "the request")
	return h, s, answered
}

// request sends one GET in the background.
func request(t *testing.T, url string) <-chan error {
	answered := make(chan error, 1)
	go func() {
		body, err := get(t, url)
		if err == nil && body != "answered" {
			err = errors.New("answer " + body)
		}
		answered <- err
	}()
	return answered
}

// TestShutdownWaitsForRequests: a request in progress when Shutdown begins
// is answered, and Shutdown returns only after it.
func TestShutdownWaitsForRequests(t *testing.T) {
	t.Parallel()
	h, s, answered := inProgress(t)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	wait(t, s.Done(), "Serve to return (Shutdown has begun)")
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a request was in progress", err)
	default:
	}
	close(h.release)
	if err := wait(t, answered, "the answer"); err != nil {
		t.Fatalf("the request in progress: %v", err)
	}
	if err := wait(t, stopped, "Shutdown"); err != nil {
		t.Fatal(err)
	}
}

// TestStopsThatCut: a Shutdown whose context ends, and a Close, cut the
// request in progress: its context ends, its client gets no answer, and
// the stop returns once the handler has.
func TestStopsThatCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stop    func(*Server) error
		wantErr bool
	}{
		{"shutdown timeout", func(s *Server) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			return s.Shutdown(ctx)
		}, true},
		{"close", (*Server).Close, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, s, answered := inProgress(t)
			err := tc.stop(s)
			if (err != nil) != tc.wantErr || tc.wantErr && !strings.Contains(err.Error(), "cut") {
				t.Fatalf("stop: %v", err)
			}
			select {
			case end := <-h.ended:
				if end == nil {
					t.Fatal("the handler was released, not cut")
				}
			default:
				t.Fatal("the stop returned before the handler")
			}
			if err := wait(t, answered, "the client"); err == nil {
				t.Fatal("the cut request got an answer")
			}
		})
	}
}

// TestConcurrentStops: stops at once all return after the handler.
func TestConcurrentStops(t *testing.T) {
	t.Parallel()
	_, s, answered := inProgress(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_ = s.Close()
			select {
			case <-s.stopDone:
			default:
				t.Error("a Close returned before the stop finished")
			}
		})
	}
	wg.Wait()
	if err := wait(t, answered, "the client"); err == nil {
		t.Fatal("the cut request got an answer")
	}
}
