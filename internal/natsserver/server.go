package natsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Defaults.
const (
	HostDefault         = "127.0.0.1"
	PortDefault         = 4222
	ClusterPortDefault  = 6222
	StartTimeoutDefault = 10 * time.Second
	// RandomPort as a port picks a free one; read it back with ClientURL.
	RandomPort = -1
)

// ErrPortInUse is returned (wrapped) by Start when a port the server must
// listen on is taken.
var ErrPortInUse = errors.New("port in use")

// Config configures an embedded server.
type Config struct {
	// Host is the client listen address. Default 127.0.0.1: the embedded
	// server has no authentication, so it stays on loopback unless asked.
	Host string
	// Port is the client port. Default 4222; RandomPort (-1) picks one.
	Port int
	// StoreDir is where JetStream keeps its data. Required. A running
	// server holds it locked (LockFileName): a second Start on it, in this
	// process or another, returns a *DataDirInUseError.
	StoreDir string
	// ServerName names the server in monitoring and in a cluster. Default:
	// the server's generated ID; required with Cluster.
	ServerName string
	// Logger receives the server's own log: notices at debug, warnings and
	// errors at warn and error, its debug output at trace. Default: none.
	Logger zerolog.Logger
	// Cluster, when set, makes the server a node of a JetStream cluster.
	Cluster *ClusterConfig
	// Options, when set, is called with the nats-server options this
	// package built from the fields above, just before the server is
	// created: the escape hatch for what Config does not cover, such as
	// authentication (Username, Password, Users, Authorization) and TLS
	// (TLSConfig, TLSVerify, TLSMap). What it changes wins; it should
	// leave JetStream and StoreDir alone. With authentication set, pass
	// the credentials to Connect too: in-process clients authenticate as
	// well. Default none.
	Options func(*server.Options)
}

// ClusterConfig joins the server to a cluster of embedded or external nodes.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node. Required.
	Name string
	// Host is the route listen address. Default: Config.Host.
	Host string
	// Port is the route port. Default 6222; RandomPort (-1) picks one.
	Port int
	// Routes are the other nodes' route URLs (nats-route://host:port); a
	// node's own URL may be included. JetStream sizes its meta group from
	// them, so every node should list all nodes.
	Routes []string
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Host == "" {
		c.Host = HostDefault
	}
	if c.Port == 0 {
		c.Port = PortDefault
	}
	if c.Cluster != nil {
		cl := *c.Cluster
		if cl.Host == "" {
			cl.Host = c.Host
		}
		if cl.Port == 0 {
			cl.Port = ClusterPortDefault
		}
		c.Cluster = &cl
	}
	return c
}

// Validate checks a config after WithDefaults and reports every field that
// cannot work as a pathupdate.FieldError.
func (c Config) Validate() error {
	var errs configErrors
	if c.StoreDir == "" {
		errs.Add("StoreDir", "empty: the embedded JetStream server needs a directory to store into")
	}
	if c.Port < RandomPort || c.Port > 65535 || c.Port == 0 {
		errs.Add("Port", "%d: use 1 to 65535, or -1 for a free one (default %d)", c.Port, PortDefault)
	}
	if cl := c.Cluster; cl != nil {
		if cl.Name == "" {
			errs.Add("Cluster.Name", "empty: give every node of the cluster the same name")
		}
		if c.ServerName == "" {
			errs.Add("ServerName", "empty: a JetStream cluster node needs a unique, stable name")
		}
		if cl.Port < RandomPort || cl.Port > 65535 || cl.Port == 0 {
			errs.Add("Cluster.Port", "%d: use 1 to 65535, or -1 for a free one (default %d)", cl.Port, ClusterPortDefault)
		}
		for _, r := range cl.Routes {
			if len(server.RoutesFromStr(r)) == 0 {
				errs.Add("Cluster.Routes", "%q is not a URL: write nats-route://host:port", r)
			}
		}
	}
	return errors.Join(errs...)
}

// ConfigError is one field of Config that cannot work; Validate joins one
// per problem. It is pathupdate.FieldError's twin: this package cannot
// import pathupdate, whose own tests start servers with it.
type ConfigError struct {
	Field   string // "Port", "Cluster.Name"
	Problem string // the value, what is wrong, the fix
}

func (e *ConfigError) Error() string { return "natsserver: Config." + e.Field + ": " + e.Problem }

type configErrors []error

func (c *configErrors) Add(field, format string, a ...any) {
	*c = append(*c, &ConfigError{Field: field, Problem: fmt.Sprintf(format, a...)})
}

// Server is a running embedded server.
type Server struct {
	srv      *server.Server
	lock     *dirLock // on StoreDir, released by Shutdown
	shutdown sync.Once
}

// Start starts the server and waits until it accepts connections, for as
// long as ctx allows or StartTimeoutDefault when ctx has no deadline. ctx
// bounds the start only: the server runs until Shutdown. JetStream
// recovers its store before that wait begins, which ctx cannot cut short
// (a large store takes as long as it takes).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsserver: not started: %w", err)
	}
	storeDir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("natsserver: StoreDir %q: %w", cfg.StoreDir, err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   storeDir,
		// The process's signals belong to the program embedding the server.
		NoSigs: true,
	}
	if cl := cfg.Cluster; cl != nil {
		opts.Cluster = server.ClusterOpts{Name: cl.Name, Host: cl.Host, Port: cl.Port}
		opts.Routes = server.RoutesFromStr(strings.Join(cl.Routes, ","))
	}
	if cfg.Options != nil {
		cfg.Options(opts)
	}

	// One server per store: a second one would start on the first's files.
	lock, err := lockDir(opts.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	slog := newServerLog(cfg.Logger)
	// Set before Start: the default logger's Fatalf exits the process.
	// The server's debug output is verbose; ask for it only when trace
	// lines would be written.
	level := max(cfg.Logger.GetLevel(), zerolog.GlobalLevel())
	srv.SetLoggerV2(slog, level <= zerolog.TraceLevel, false, false)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, StartTimeoutDefault)
		defer cancel()
	}
	srv.Start()
	s := &Server{srv: srv, lock: lock}
	if err := s.waitReady(ctx, slog, cfg); err != nil {
		s.Shutdown()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server's readiness (nats-server offers no event for
// it) until it is ready, it reports a fatal error, or ctx ends.
func (s *Server) waitReady(ctx context.Context, slog *serverLog, cfg Config) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case f := <-slog.fatal:
			return startError(f, cfg)
		default:
		}
		// A short readiness check: nats-server busy-polls for its duration.
		if s.srv.ReadyForConnections(time.Millisecond) {
			return nil
		}
		select {
		case f := <-slog.fatal:
			return startError(f, cfg)
		case <-ctx.Done():
			return fmt.Errorf("natsserver: not ready for connections on %s: %w", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), ctx.Err())
		case <-tick.C:
		}
	}
}

func startError(f fatalError, cfg Config) error {
	if errors.Is(f, syscall.EADDRINUSE) {
		addr, what := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), "client"
		if f.onRoutePort() && cfg.Cluster != nil {
			addr, what = net.JoinHostPort(cfg.Cluster.Host, strconv.Itoa(cfg.Cluster.Port)), "cluster"
		}
		return fmt.Errorf("natsserver: %w: the embedded NATS server cannot listen on %s (%s port): "+
			"another NATS server or worker may be running there; point --nats-url at it, or choose another port",
			ErrPortInUse, addr, what)
	}
	return fmt.Errorf("natsserver: %w", f)
}

// ClientURL is the URL clients in other processes connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Connect opens a client connection in-process (no TCP). opts come after
// the in-process option, so a caller can add a name, handlers and so on.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(s.ClientURL(), append([]nats.Option{nats.InProcessServer(s.srv)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsserver: connect in-process: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. It may be
// called more than once and from several goroutines.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.lock.release()
	})
}

// NATS returns the underlying server, for what this package does not wrap
// (monitoring, JetStream cluster state in tests).
func (s *Server) NATS() *server.Server { return s.srv }
