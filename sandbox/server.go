package sandbox

import (
	"context"
	"fmt"
	"net/http"

	"github.com/pathupdate/pathupdate/internal/httpserve"
)

// Server is a Sandbox listening on a real TCP address, like
// httptest.Server. The embedded *Sandbox is its state: s.AddOrder,
// s.SetFaults, s.Calls and the rest work on a Server directly.
type Server struct {
	*Sandbox
	// URL is the base URL, like "http://127.0.0.1:38411", with no trailing
	// slash: the api_base to point a client at.
	URL string

	http      *httpserve.Server
	transport *http.Transport
	client    *http.Client
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
	hs, err := httpserve.New(httpserve.Config{Name: "sandbox", Addr: addr, Handler: sb, Logger: sb.log})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := hs.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("sandbox: listening on %s: %w", addr, err)
	}
	s := &Server{Sandbox: sb, URL: hs.URL(), http: hs}
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.Proxy = nil // the sandbox is local whatever HTTP_PROXY says
	// Tests and benchmarks run hundreds of concurrent calls; without enough
	// idle connections each would dial anew and run out of ports.
	s.transport.MaxIdleConnsPerHost = 512
	s.client = &http.Client{Transport: s.transport}
	return s, nil
}

// Client returns an HTTP client for s.URL, with enough idle connections
// for heavy concurrency. Close closes its idle connections.
func (s *Server) Client() *http.Client { return s.client }

// Done is closed when the server stopped serving: after Close, or when
// serving failed.
func (s *Server) Done() <-chan struct{} { return s.http.Done() }

// Close stops the server: it cuts open connections, ends requests that are
// waiting out a Latency fault, and returns once every request handler has
// returned (it logs why it waits after 5s). It may be called more than
// once.
func (s *Server) Close() {
	_ = s.http.Close() // a cut is what Close means: no error to report
	s.transport.CloseIdleConnections()
}
