package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/internal/httpserve"
)

// Server serves a Handler on Config.Addr. Start it once; Shutdown it once
// or more, started or not.
type Server struct {
	addr string
	h    *Handler
	log  zerolog.Logger
	http *httpserve.Server
}

// NewServer builds a Server and its Handler from cfg.
func NewServer(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	hs, err := httpserve.New(httpserve.Config{
		Name:              "health",
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second, // a scrape may take up to the handler's 9 s
		IdleTimeout:       time.Minute,
		Logger:            cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	return &Server{addr: cfg.Addr, h: h, log: cfg.Logger, http: hs}, nil
}

// Handler is the server's handler, for AddCheck.
func (s *Server) Handler() *Handler { return s.h }

// Start listens on the configured address and serves in the background.
// It returns once the listener is open, or an error naming the address
// when it cannot listen. ctx bounds only the listen.
func (s *Server) Start(ctx context.Context) error {
	err := s.http.Start(ctx)
	if errors.Is(err, httpserve.ErrStarted) {
		return errors.New("health: Start called twice")
	}
	if err != nil {
		return fmt.Errorf("health: cannot listen on %s for /metrics, /healthz and /readyz (PATHUPDATE_HTTP_ADDR / --http-addr): %w", s.addr, err)
	}
	// No line here: the caller logs one, with the URL and what else it
	// serves, so that a start shows one line and not two.
	return nil
}

// Addr is the address listened on (the real port when Config.Addr asked
// for 0), or "" before Start.
func (s *Server) Addr() string { return s.http.Addr() }

// URL is "http://" + Addr(), or "" before Start.
func (s *Server) URL() string { return s.http.URL() }

// Shutdown stops accepting, lets requests in progress finish until ctx
// ends, then closes what is left. Safe to call more than once and on a
// Server never started.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
