package httpserve

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

// Defaults of Config.
const (
	ReadHeaderTimeoutDefault = 10 * time.Second
	// SlowHandlerWarning is how long a stop waits for request handlers
	// before it logs that it is still waiting (and why it may hang).
	SlowHandlerWarning = 5 * time.Second
)

// ErrStarted is matched by the error of Start on a server started or
// stopped before: a Server serves once.
var ErrStarted = errors.New("already started or stopped: a server serves once")

// Config configures a Server.
type Config struct {
	// Name names the server in log lines ("gateway", "health", ...).
	Name string
	// Addr is host:port to listen on; port 0 picks a free one. Required.
	Addr string
	// Handler answers every request. Required.
	Handler http.Handler
	// ReadHeaderTimeout; default ReadHeaderTimeoutDefault (10s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout, WriteTimeout, IdleTimeout and MaxHeaderBytes are
	// net/http's; 0 leaves net/http's default (no limit, or 1 MiB of
	// headers).
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// Logger gets serving failures and slow stops; default none.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = ReadHeaderTimeoutDefault
	}
	return c
}

// Validate reports the first field of c (after WithDefaults) that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("httpserve.Config.Addr is empty: give host:port (port 0 picks a free one)")
	case c.Handler == nil:
		return errors.New("httpserve.Config.Handler is nil")
	case c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0:
		return errors.New("httpserve.Config: a timeout is negative: use 0 (the default) or a positive duration")
	}
	return nil
}

// Server is one HTTP server's lifecycle. Start it once; Shutdown or Close
// it any number of times, started or not.
type Server struct {
	cfg    Config
	srv    *http.Server
	base   context.Context    // every request's context derives from it
	cancel context.CancelFunc // ends them (a cut)
	served chan struct{}      // closed when Serve has returned

	mu       sync.Mutex
	addr     string
	started  bool
	stopped  bool           // a stop began: Start refuses
	refusing bool           // the stop is waiting for handlers: none may begin
	inflight sync.WaitGroup // handlers running; Add only under mu while !refusing
	serveErr error
	stopDone chan struct{} // closed when the first stop has finished
}

// New returns a Server for cfg (after WithDefaults). It does not listen
// yet.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, base: base, cancel: cancel, served: make(chan struct{}), stopDone: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          nil, // net/http's own log: connection-level noise only, never headers
	}
	return s, nil
}

// serve counts a handler in, so that a stop can wait for it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.refusing {
		// Only a request that slipped past the stop gets here; its
		// connection is closing: drop it unanswered.
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.cfg.Handler.ServeHTTP(w, r)
}

// Start listens on Config.Addr and serves in the background until a stop.
// ctx bounds the listen only. The error of a failed listen is net's
// (it names the address); a server started or stopped before refuses with
// ErrStarted.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return ErrStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.started, s.addr = true, ln.Addr().String()
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error().Err(err).Str("addr", ln.Addr().String()).Msgf("%s stopped serving", s.cfg.Name)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// Addr is the address listened on (the chosen port when Config.Addr had
// port 0), or "" before Start.
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

// Done is closed when the server stopped serving: after a stop, or when
// serving failed (see Err). It is never closed for a server never started.
func (s *Server) Done() <-chan struct{} { return s.served }

// Err is why serving stopped on its own, or nil.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}

// Shutdown stops accepting requests and waits for those in progress to be
// answered until ctx ends; then it cuts them (see the package doc) and
// says so in its error. It returns once every handler has returned. Only
// the first stop does the work; a later one waits for it and returns nil.
func (s *Server) Shutdown(ctx context.Context) error { return s.stop(ctx, false) }

// Close stops at once: it cuts every request in progress and returns once
// every handler has returned. Like Shutdown, it may be called more than
// once.
func (s *Server) Close() error { return s.stop(context.Background(), true) }

func (s *Server) stop(ctx context.Context, cut bool) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.stopDone
		return nil
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()
	defer close(s.stopDone)
	defer s.cancel()
	if !started {
		return nil
	}
	var err error
	if !cut {
		if err = s.srv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("%s: requests still in progress at shutdown were cut: %w", s.cfg.Name, err)
		}
	}
	if cut || err != nil {
		// Connections first, so that no handler ended by the cancel can
		// still get an answer through.
		_ = s.srv.Close() // its error is the listener's close error: nothing to do
		s.cancel()
	}
	<-s.served
	s.mu.Lock()
	s.refusing = true
	s.mu.Unlock()
	s.waitHandlers()
	return err
}

// waitHandlers waits for every handler, and says why when it takes long:
// after a cut only a handler that ignores its context (or a write blocked
// in the kernel) can hold a stop up.
func (s *Server) waitHandlers() {
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	timer := time.NewTimer(SlowHandlerWarning)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.cfg.Logger.Warn().Msgf("%s: the stop is waiting for request handlers that have not returned after %s", s.cfg.Name, SlowHandlerWarning)
		<-done
	}
}
