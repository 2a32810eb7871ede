package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/httpserve"
	"github.com/pathupdate/pathupdate/worker"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the operator's console for one deployment.
type Console struct {
	cfg      Config
	js       jetstream.JetStream
	store    *deadletter.Store
	index    *deadletter.Index
	history  *history.Store
	sessions *sessions
	origin   *http.CrossOriginProtection
	pages    map[string]*template.Template
	rates    rates
	mux      *http.ServeMux

	// Set by Start.
	srv     *httpserve.Server
	stopRun context.CancelFunc
	runDone chan struct{}
}

// New returns a Console on js, a handle the caller owns. It reads
// nothing yet: Run keeps it up to date, and the first page that needs the
// dead letters reads them if Run has not.
func New(js jetstream.JetStream, cfg Config) (*Console, error) {
	if js == nil {
		return nil, errors.New("console: nil jetstream.JetStream")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, err := deadletter.NewStore(js, deadletter.StoreConfig{Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	sess, err := newSessions(cfg.Token.Reveal(), cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("console: session key: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, js: js, store: store, index: deadletter.NewIndex(store),
		history: history.NewStore(js, cfg.Now), sessions: sess,
		origin: http.NewCrossOriginProtection(), pages: pages,
	}
	c.routes()
	return c, nil
}

// Handler answers every request of the console.
func (c *Console) Handler() http.Handler { return c.mux }

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.Handle("POST /logout", c.action(c.logout, false))
	m.Handle("GET /{$}", c.page(c.overview))
	m.Handle("GET /deadletters", c.page(c.deadLetters))
	m.Handle("GET /deadletters/{seq}", c.page(c.deadLetter))
	m.Handle("POST /deadletters/{seq}/reveal", c.action(c.reveal, true))
	m.Handle("POST /deadletters/replay", c.action(c.replay, true))
	m.Handle("POST /deadletters/purge", c.action(c.purge, true))
	m.Handle("GET /waybill", c.page(c.waybill))
	m.Handle("POST /pause", c.action(c.pause, true))
	m.Handle("POST /resume", c.action(c.resume, true))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	c.mux = m
}

// cacheStatic lets browsers keep the embedded files for an hour.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// Run keeps the dead-letter index and the rates up to date every
// Config.Refresh until ctx ends. A failed refresh is logged and tried
// again at the next tick.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	var lastErr string
	for {
		err := c.refresh(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && err.Error() != lastErr:
			c.cfg.Logger.Warn().Err(err).Msg("console: refresh failed; the pages show what was read before")
		case err == nil && lastErr != "":
			c.cfg.Logger.Info().Msg("console: refresh works again")
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Refresh, 30*time.Second))
	defer cancel()
	members, err := worker.Members(ctx, c.js)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("workers: %w", err)
	}
	c.rates.sample(members, c.cfg.Now())
	if err := c.index.Refresh(ctx); err != nil && !errors.Is(err, deadletter.ErrNoStream) {
		return fmt.Errorf("dead letters: %w", err)
	}
	return nil
}

// ensureIndex reads the dead letters once if Run has not yet.
func (c *Console) ensureIndex(ctx context.Context) error {
	if c.index.Ready() {
		return nil
	}
	return c.index.Refresh(ctx)
}

// Start listens on Config.Addr and serves in the background, keeping
// the console up to date (Run), until Stop. A console starts once.
func (c *Console) Start(ctx context.Context) error {
	srv, err := httpserve.New(httpserve.Config{Name: "console", Addr: c.cfg.Addr, Handler: c.Handler(), Logger: c.cfg.Logger,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("console: listen on %s: %w", c.cfg.Addr, err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	c.srv, c.stopRun, c.runDone = srv, stop, done
	return nil
}

// URL is where the console is served ("http://host:port"), "" before
// Start.
func (c *Console) URL() string {
	if c.srv == nil {
		return ""
	}
	return c.srv.URL()
}

// Done is closed when the console stopped serving (Stop, or a failure:
// see Err).
func (c *Console) Done() <-chan struct{} { return c.srv.Done() }

// Err is why serving stopped on its own, or nil.
func (c *Console) Err() error { return c.srv.Err() }

// Stop lets requests in progress finish until ctx ends (a replay begun
// is finished even then), and stops keeping the console up to date.
func (c *Console) Stop(ctx context.Context) error {
	if c.srv == nil {
		return nil
	}
	err := c.srv.Shutdown(ctx)
	c.stopRun()
	<-c.runDone
	return err
}
