package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Server serves a Handler on Config.Addr. Start it once; Shutdown it once
// or more, started or not.
type Server struct {
	addr string
	h    *Handler
	log  zerolog.Logger
	srv  *http.Server

	mu      sync.Mutex
	started bool
	ln      net.Listener
	served  chan struct{} // closed when Serve has returned
}

// NewServer builds a Server and its Handler from cfg.
func NewServer(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{
		addr: cfg.Addr,
		h:    h,
		log:  cfg.Logger,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second, // a scrape may take up to the handler's 9 s
			IdleTimeout:       time.Minute,
		},
		served: make(chan struct{}),
	}, nil
}

// Handler is the server's handler, for AddCheck.
func (s *Server) Handler() *Handler { return s.h }

// Start listens on the configured address and serves in the background.
// It returns once the listener is open, or an error naming the address
// when it cannot listen. ctx bounds only the listen.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("health: Start called twice")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("health: cannot listen on %s for /metrics, /healthz and /readyz (PATHUPDATE_HTTP_ADDR / --http-addr): %w", s.addr, err)
	}
	s.started, s.ln = true, ln
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Str("addr", ln.Addr().String()).Msg("health: server stopped")
		}
	}()
	// No line here: the caller logs one, with the URL and what else it
	// serves, so that a start shows one line and not two.
	return nil
}

// Addr is the address listened on (the real port when Config.Addr asked
// for 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is "http://" + Addr(), or "" before Start.
func (s *Server) URL() string {
	if a := s.Addr(); a != "" {
		return "http://" + a
	}
	return ""
}

// Shutdown stops accepting, lets requests in progress finish until ctx
// ends, then closes what is left. Safe to call more than once and on a
// Server never started.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close() // ctx ended first: cut what is left
	}
	<-s.served
	return err
}
