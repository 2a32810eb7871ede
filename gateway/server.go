package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/internal/httpserve"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// ReadHeaderTimeout bounds reading a request's headers in a Server.
const ReadHeaderTimeout = 10 * time.Second

// Server serves a Handler on Config.Addr: POST /v1/events, and JSON 404
// answers elsewhere. Start it once; Shutdown stops it.
type Server struct {
	h       *Handler
	cfg     Config
	log     zerolog.Logger
	http    *httpserve.Server
	stopLog sync.Once
}

// NewServer returns a Server publishing through pub (owned by the
// caller) with cfg (after WithDefaults). It does not listen yet.
func NewServer(pub *pathupdate.Publisher, cfg Config) (*Server, error) {
	h, err := NewHandler(pub, cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no such path %q: POST events to %s", clip(r.URL.Path, 100), Path)})
	})
	hs, err := httpserve.New(httpserve.Config{
		Name:              "gateway",
		Addr:              h.cfg.Addr,
		Handler:           mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       h.cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		Logger:            h.cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return &Server{h: h, cfg: h.cfg, log: h.cfg.Logger, http: hs}, nil
}

// Handler returns the server's Handler, to mount elsewhere instead.
func (s *Server) Handler() *Handler { return s.h }

// Start listens on Config.Addr and serves in the background until
// Shutdown. ctx bounds the listen only. It fails if the address is taken,
// or if the server was started or shut down before.
func (s *Server) Start(ctx context.Context) error {
	err := s.http.Start(ctx)
	if errors.Is(err, httpserve.ErrStarted) {
		return errors.New("gateway: Server.Start: already started or shut down")
	}
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w (choose another address)", s.cfg.Addr, err)
	}
	if !s.h.auth {
		s.log.Warn().Str("addr", s.Addr()).Msg("gateway serves without authentication (AllowNoAuth): anyone who reaches it can publish")
	}
	s.log.Info().Str("addr", s.Addr()).Str("path", Path).Msg("gateway listening")
	return nil
}

// Addr is the address the server listens on (the chosen port when
// Config.Addr had port 0), or "" before Start.
func (s *Server) Addr() string { return s.http.Addr() }

// URL is "http://" + Addr(), or "" before Start.
func (s *Server) URL() string { return s.http.URL() }

// Done is closed when the server stopped serving: after Shutdown, or when
// serving failed (see Err). It is never closed for a server never started.
func (s *Server) Done() <-chan struct{} { return s.http.Done() }

// Err is why serving stopped on its own, or nil.
func (s *Server) Err() error { return s.http.Err() }

// Shutdown stops accepting requests and waits for those in progress to be
// answered (their PubAcks awaited) until ctx ends; then it cuts them: their
// connections are closed and their publishes cancelled, so a client sees
// no answer and must send again (a repeat is stored once). It may be
// called more than once, and before or without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.Addr() != "" {
		s.stopLog.Do(func() { s.log.Info().Msg("gateway stopped") })
	}
	return err
}
