package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a Sandbox listening on a real TCP address, like
// httptest.Server. The embedded *Sandbox is its state: s.AddOrder,
// s.SetFaults, s.Calls and the rest work on a Server directly.
type Server struct {
	*Sandbox
	// URL is the base URL, like "http://127.0.0.1:38411", with no trailing
	// slash: the api_base to point a client at.
	URL string

	srv       *http.Server
	stop      context.CancelFunc // cancels every request's context
	served    chan struct{}      // closed when Serve has returned
	transport *http.Transport
	client    *http.Client

	mu        sync.Mutex // guards closed and the Add side of inflight
	closed    bool
	inflight  sync.WaitGroup
	closeOnce sync.Once
}

// NewServer starts a Sandbox for cfg on 127.0.0.1 at a free port at once,
// like httptest.NewServer. It panics if cfg is invalid or it cannot listen,
// as httptest does: a test cannot go on without it. Call Close when done.
func NewServer(cfg Config) *Server {
	s, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		panic(fmt.Sprintf("sandbox: NewServer: %v", err))
	}
	return s
}

// Listen starts a Sandbox for cfg on addr (host:port; port 0 picks a free
// one). It is what `pathupdate sandbox --addr` runs. Call Close when done.
func Listen(addr string, cfg Config) (*Server, error) {
	sb, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listening on %s: %w", addr, err)
	}
	base, stop := context.WithCancel(context.Background())
	s := &Server{
		Sandbox: sb,
		URL:     "http://" + ln.Addr().String(),
		stop:    stop,
		served:  make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.Proxy = nil // the sandbox is local whatever HTTP_PROXY says
	// Tests and benchmarks run hundreds of concurrent calls; without enough
	// idle connections each would dial anew and run out of ports.
	s.transport.MaxIdleConnsPerHost = 512
	s.client = &http.Client{Transport: s.transport}

	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sb.log.Error().Err(err).Msg("sandbox: server stopped")
		}
	}()
	return s, nil
}

// serve counts a request in so Close can wait for it to end.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "sandbox: closed", http.StatusServiceUnavailable)
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.Sandbox.ServeHTTP(w, r)
}

// Client returns an HTTP client for s.URL, with enough idle connections
// for heavy concurrency. Close closes its idle connections.
func (s *Server) Client() *http.Client { return s.client }

// Close stops the server: it cuts open connections, ends requests that are
// waiting out a Latency fault, and returns once every request handler has
// returned. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		// Connections first, so that no handler ended by stop can still
		// get an answer through.
		_ = s.srv.Close() // the error is the listener's close error: nothing to do
		s.stop()
		<-s.served

		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			// Only a handler stuck outside the sandbox's control (a write
			// blocked in the kernel) can get here; say why Close hangs.
			s.log.Warn().Msg("sandbox: Close is waiting for request handlers that have not returned after 5s")
			<-done
		}
		s.transport.CloseIdleConnections()
	})
}
