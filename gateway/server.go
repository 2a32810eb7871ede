package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// ReadHeaderTimeout bounds reading a request's headers in a Server.
const ReadHeaderTimeout = 10 * time.Second

// Server serves a Handler on Config.Addr: POST /v1/events, and JSON 404
// answers elsewhere. Start it once; Shutdown stops it.
type Server struct {
	h   *Handler
	cfg Config
	log zerolog.Logger

	mu       sync.Mutex
	srv      *http.Server
	addr     string
	cancel   context.CancelFunc // ends every request's context (hard stop)
	served   chan struct{}      // closed when Serve has returned
	serveErr error
	stopped  bool
	draining bool           // set once http.Server.Shutdown returned: no new request may start
	inflight sync.WaitGroup // requests being handled
}

// NewServer returns a Server publishing through pub (owned by the
// caller) with cfg (after WithDefaults). It does not listen yet.
func NewServer(pub *pathupdate.Publisher, cfg Config) (*Server, error) {
	h, err := NewHandler(pub, cfg)
	if err != nil {
		return nil, err
	}
	return &Server{h: h, cfg: h.cfg, log: h.cfg.Logger, served: make(chan struct{})}, nil
}

// Handler returns the server's Handler, to mount elsewhere instead.
func (s *Server) Handler() *Handler { return s.h }

// Start listens on Config.Addr and serves in the background until
// Shutdown. ctx bounds the listen only. It fails if the address is taken,
// or if the server was started or shut down before.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.stopped {
		return errors.New("gateway: Server.Start: already started or shut down")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w (choose another address)", s.cfg.Addr, err)
	}
	base, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.Handle(Path, s.h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no such path %q: POST events to %s", clip(r.URL.Path, 100), Path)})
	})
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			if s.draining {
				// Only a request that slipped past http.Server.Shutdown gets
				// here; its connection is closing: drop it unanswered.
				s.mu.Unlock()
				panic(http.ErrAbortHandler)
			}
			s.inflight.Add(1)
			s.mu.Unlock()
			defer s.inflight.Done()
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          nil, // net/http's own log: connection-level noise only, never headers
	}
	s.addr = ln.Addr().String()
	s.cancel = cancel
	if !s.h.auth {
		s.log.Warn().Str("addr", s.addr).Msg("gateway serves without authentication (AllowNoAuth): anyone who reaches it can publish")
	}
	s.log.Info().Str("addr", s.addr).Str("path", Path).Msg("gateway listening")
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("gateway stopped serving")
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// Addr is the address the server listens on (the chosen port when
// Config.Addr had port 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is "http://" + Addr(), or "" before Start.
func (s *Server) URL() string {
	if a := s.Addr(); a != "" {
		return "http://" + a
	}
	return ""
}

// Done is closed when the server stopped serving: after Shutdown, or when
// serving failed (see Err). It is never closed for a server never started.
func (s *Server) Done() <-chan struct{} { return s.served }

// Err is why serving stopped on its own, or nil.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}

// Shutdown stops accepting requests and waits for those in progress to be
// answered (their PubAcks awaited) until ctx ends; then it cuts them: their
// publishes are cancelled and their connections closed, so a client sees
// no answer and must send again (a repeat is stored once). It may be
// called more than once, and before or without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, cancel, first := s.srv, s.cancel, !s.stopped
	s.stopped = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		cancel()
		_ = srv.Close() // the listener is closed already; this cuts connections
		err = fmt.Errorf("gateway: requests still in progress at shutdown were cut: %w", err)
	}
	cancel()
	<-s.served
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.inflight.Wait() // after a cut, handlers end as soon as their publish sees the cancel
	if first {
		s.log.Info().Msg("gateway stopped")
	}
	return err
}
