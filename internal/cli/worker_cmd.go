package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "consume trace events and deliver them to WeChat, in order per waybill",
		Description: "With no --nats-url it starts an embedded JetStream server on 127.0.0.1:4222 storing under --data-dir.\n" +
			"With no WeChat credentials it refuses to start, unless --sandbox runs the sandbox in-process.",
		Flags: append(append(append(append(wechatFlags(), streamFlags()...), gatewayFlags("")...), consoleFlags("")...),
			&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "store of the embedded JetStream server", Sources: cli.EnvVars("PATHUPDATE_DATA_DIR")},
			&cli.IntFlag{Name: "embedded-port", Value: 4222, Usage: "port of the embedded JetStream server (127.0.0.1)", Sources: cli.EnvVars("PATHUPDATE_EMBEDDED_PORT")},
			&cli.BoolFlag{Name: "sandbox", Usage: "deliver to an in-process WeChat sandbox that accepts any waybill (for trying things out)"},
			&cli.StringFlag{Name: "consumer", Value: worker.ConsumerDefault, Usage: "durable consumer name shared by all workers", Sources: cli.EnvVars("PATHUPDATE_CONSUMER")},
			&cli.IntFlag{Name: "max-in-flight", Value: worker.MaxInFlightDefault, Usage: "messages held at once (bounds memory)", Sources: cli.EnvVars("PATHUPDATE_MAX_IN_FLIGHT")},
			&cli.IntFlag{Name: "concurrency", Value: worker.ConcurrencyDefault, Usage: "API calls in progress at once", Sources: cli.EnvVars("PATHUPDATE_CONCURRENCY")},
			&cli.DurationFlag{Name: "ack-wait", Value: worker.AckWaitDefault, Usage: "JetStream AckWait; a dead worker's messages return after this", Sources: cli.EnvVars("PATHUPDATE_ACK_WAIT")},
			&cli.DurationFlag{Name: "pinned-ttl", Value: worker.PinnedTTLDefault, Usage: "a killed worker's partitions move after this", Sources: cli.EnvVars("PATHUPDATE_PINNED_TTL")},
			&cli.DurationFlag{Name: "member-ttl", Value: worker.MemberTTLDefault, Usage: "a worker without heartbeat for this long counts as gone", Sources: cli.EnvVars("PATHUPDATE_MEMBER_TTL")},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: worker.ShutdownTimeoutDefault, Usage: "how long calls in progress may finish on SIGTERM", Sources: cli.EnvVars("PATHUPDATE_SHUTDOWN_TIMEOUT")},
			&cli.DurationFlag{Name: "start-timeout", Value: 2 * time.Minute, Usage: "how long to wait at start for NATS and JetStream (a server starting, a cluster electing its leader); what cannot pass by itself ends the start at once", Sources: cli.EnvVars("PATHUPDATE_START_TIMEOUT")},
			&cli.StringFlag{Name: "http-addr", Value: health.AddrDefault, Usage: "address of /metrics, /healthz and /readyz (\"off\" for none)", Sources: cli.EnvVars("PATHUPDATE_HTTP_ADDR")},
			&cli.DurationFlag{Name: "retry-initial", Value: retry.InitialIntervalDefault, Usage: "first retry delay after -1/5xx/timeout", Sources: cli.EnvVars("PATHUPDATE_RETRY_INITIAL")},
			&cli.DurationFlag{Name: "retry-max", Value: retry.MaxIntervalDefault, Usage: "longest retry delay", Sources: cli.EnvVars("PATHUPDATE_RETRY_MAX")},
			&cli.IntFlag{Name: "retry-attempts", Value: retry.MaxAttemptsDefault, Usage: "attempts of one event failing on its own before retries_exhausted", Sources: cli.EnvVars("PATHUPDATE_RETRY_ATTEMPTS")},
			&cli.StringFlag{Name: "rate-limit", Value: "0", Usage: "calls per second to logistics.updatePath for the whole deployment, shared by the live workers: 0 for none, a number, or auto (WeChat's reported rate_limit)", Sources: cli.EnvVars("PATHUPDATE_RATE_LIMIT")},
			&cli.DurationFlag{Name: "quota-interval", Value: worker.QuotaIntervalDefault, Usage: "how often one worker asks WeChat's getApiQuota for the day's quota (and at once on a 45009)", Sources: cli.EnvVars("PATHUPDATE_QUOTA_INTERVAL")},
			printConfigFlag(),
		),
		Action: runWorker,
	}
}

func wechatFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-base", Value: pathupdate.DefaultAPIBase, Usage: "WeChat API base URL (in WeChat Cloud Hosting with --token-source none: " + pathupdate.OpenInterfaceAPIBase + ", plain http, which its open-interface service takes)", Sources: cli.EnvVars("WECHAT_API_BASE")},
		&cli.StringFlag{Name: "appid", Usage: "WeChat AppID", Sources: cli.EnvVars("WECHAT_APPID")},
		&cli.StringFlag{Name: "appsecret", Usage: "WeChat AppSecret (never logged)", Sources: cli.EnvVars("WECHAT_APPSECRET")},
		&cli.StringFlag{Name: "appsecret-file", Usage: "file holding the AppSecret", Sources: cli.EnvVars("WECHAT_APPSECRET_FILE")},
		&cli.StringFlag{Name: "token-source", Value: "stable", Usage: "access_token source: stable (safe for many workers), classic, file, or none (WeChat Cloud Hosting's open-interface service: no token, no AppID or AppSecret; with --api-base " + pathupdate.OpenInterfaceAPIBase + ")", Sources: cli.EnvVars("WECHAT_TOKEN_SOURCE")},
		&cli.StringFlag{Name: "access-token-file", Usage: "with --token-source file: file a central token service keeps current", Sources: cli.EnvVars("WECHAT_ACCESS_TOKEN_FILE")},
		&cli.StringFlag{Name: "transport", Value: pathupdate.TransportHTTPS, Usage: "how events reach logistics.updatePath: https (the API itself) or cloudcall (through a Cloud Base function)", Sources: cli.EnvVars("WECHAT_TRANSPORT")},
		&cli.StringFlag{Name: "cloud-env", Usage: "with --transport cloudcall: the Cloud Base environment id", Sources: cli.EnvVars("WECHAT_CLOUD_ENV")},
		&cli.StringFlag{Name: "cloud-function", Usage: "with --transport cloudcall: the deployed function's name (the repo's is updatePath)", Sources: cli.EnvVars("WECHAT_CLOUD_FUNCTION")},
	}
}

func streamFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "replicas", Value: 1, Usage: "stream replicas (1 on one server, 3 on a cluster)", Sources: cli.EnvVars("PATHUPDATE_REPLICAS")},
		&cli.IntFlag{Name: "partitions", Value: pathupdate.DefaultPartitions, Usage: "partition count, fixed when the stream is created", Sources: cli.EnvVars("PATHUPDATE_PARTITIONS")},
		&cli.DurationFlag{Name: "max-age", Usage: "trace stream max age (0: unlimited)", Sources: cli.EnvVars("PATHUPDATE_MAX_AGE")},
		&cli.Int64Flag{Name: "max-bytes", Value: -1, Usage: "trace stream max bytes (-1: unlimited); a full stream refuses publishes", Sources: cli.EnvVars("PATHUPDATE_MAX_BYTES")},
		&cli.DurationFlag{Name: "duplicate-window", Value: 2 * time.Minute, Usage: "Nats-Msg-Id deduplication window", Sources: cli.EnvVars("PATHUPDATE_DUPLICATE_WINDOW")},
		&cli.DurationFlag{Name: "history-max-age", Value: history.MaxAgeDefault, Usage: "how long delivery history (LOGISTICS_HISTORY, for `pathupdate trace`) is kept; 0 turns it off", Sources: cli.EnvVars("PATHUPDATE_HISTORY_MAX_AGE")},
	}
}

// natsConn connects to --nats-url, or starts the embedded server when it is
// empty and embedded is allowed, and refuses a server older than
// pathupdate.MinServerVersion. The returned close func undoes both.
func natsConn(ctx context.Context, cmd *cli.Command, log zerolog.Logger, name string, embedded bool) (*nats.Conn, func(), error) {
	nc, closeFn, err := natsConnAnyVersion(ctx, cmd, log, name, embedded)
	if err != nil {
		return nil, nil, err
	}
	if err := pathupdate.RequireServer(nc); err != nil {
		closeFn()
		return nil, nil, err
	}
	return nc, closeFn, nil
}

func natsConnAnyVersion(ctx context.Context, cmd *cli.Command, log zerolog.Logger, name string, embedded bool) (*nats.Conn, func(), error) {
	url := cmd.String("nats-url")
	if url != "" || !embedded {
		if url == "" {
			url = nats.DefaultURL
		}
		nc, err := connectWaiting(ctx, cmd, log, url, name)
		if err != nil {
			return nil, nil, err
		}
		return nc, nc.Close, nil
	}
	cfg, _ := embeddedConfig(cmd)
	cfg.Logger = log
	ns, err := natsserver.Start(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	log.Info().Str("url", ns.ClientURL()).Str("data_dir", cmd.String("data-dir")).Msg("embedded JetStream server started")
	nc, err := ns.Connect(nats.Name(name))
	if err != nil {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("connect to the embedded server: %w", err)
	}
	return nc, func() { nc.Close(); ns.Shutdown() }, nil
}

// useSandbox starts an in-process sandbox with --sandbox and points s at
// it; the returned func closes it.
func useSandbox(cmd *cli.Command, log zerolog.Logger, s *assemble.Settings) func() {
	if !cmd.Bool("sandbox") {
		return func() {}
	}
	sbcfg := sandbox.Config{AcceptAnyWaybill: true, OpenInterface: s.Tokens.Kind == pathupdate.TokenSourceNone}
	if s.Client.Transport == pathupdate.TransportCloudCall { // the sandbox accepts whatever env and function were asked for
		sbcfg.CloudEnv, sbcfg.CloudFunction = s.Client.CloudEnv, s.Client.CloudFunction
	}
	sb := sandbox.NewServer(sbcfg)
	s.Tokens.APIBase, s.Client.APIBase = sb.URL, sb.URL
	log.Warn().Str("url", sb.URL).Msg("delivering to an in-process WeChat sandbox, not to WeChat (see GET " + sb.URL + "/sandbox/received)")
	return sb.Close
}

func runWorker(ctx context.Context, cmd *cli.Command) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = nil // a signal during start-up is a clean stop, not a failure
		}
	}()
	if cmd.Bool("print-config") { // prints, then checks the settings (checkBeforeAction lets it through)
		return printConfig(cmd, cmd.Root().Writer)
	}
	// The settings were checked before (checkSettings): what is read
	// here is valid.
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	ws, err := workerSettings(cmd, assemble.Settings{})
	if err != nil {
		return err
	}
	ws.Logger = log
	warnUnusedCredentials(log, ws.Tokens)
	tp, stopTracing, err := tracerProvider(ctx, log, "pathupdate-worker")
	if err != nil {
		return err
	}
	defer stopTracing() // after the worker stopped: its last spans are flushed
	ws.Worker.TracerProvider = tp
	ws.Worker.MemberID = worker.NewMemberID()
	ws.UserAgent = "pathupdate-worker/" + ws.Worker.MemberID
	wcfg := ws.Worker.WithDefaults()
	scfg := streamsConfig(cmd, pathupdate.StreamsConfig{})
	// Token fetches happen only once the worker calls the API, after m is
	// set below.
	var m *metrics.Metrics
	ws.Tokens.OnFetch = func(src string, err error) { m.TokenFetched(src, err) }
	defer useSandbox(cmd, log, &ws)()
	nc, closeNATS, err := natsConn(ctx, cmd, log, "pathupdate-worker", true)
	if err != nil {
		return err
	}
	defer closeNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	hc, historyOn := historyConfig(cmd)
	// A subject the server refuses ends the start at once (startError).
	rctx, endRefusals := refusalContext(ctx, nc)
	defer endRefusals()
	if err := untilJetStreamAnswers(rctx, log, cmd.Duration("start-timeout"), func(ctx context.Context) error {
		if err := pathupdate.EnsureStreams(ctx, js, scfg); err != nil || !historyOn {
			return err
		}
		return history.EnsureStream(ctx, js, hc)
	}); err != nil {
		return startError(rctx, err)
	}
	parts, err := pathupdate.TracePartitions(ctx, js)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m, err = metrics.New(metrics.Config{Registry: reg, Logger: log,
		ConsumerLag: metrics.JetStreamLag(js, pathupdate.TraceStream, metrics.PartitionConsumers(wcfg.Consumer, parts))})
	if err != nil {
		return err
	}
	ws.Worker.Observer = m
	if historyOn {
		hw, err := history.NewWriter(js, history.WriterConfig{Logger: log, OnWritten: m.HistoryWritten, OnDropped: m.HistoryDropped})
		if err != nil {
			return err
		}
		ws.Worker.History = hw
		defer func() { // after the worker stopped: its last records are written
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hw.Close(ctx); err != nil {
				log.Warn().Err(err).Uint64("dropped", hw.Dropped()).Msg("history: records left unwritten at stop")
			}
		}()
	}

	w, err := assemble.Worker(js, ws)
	if err != nil {
		return err
	}
	m.SetLoad(func() (int, int) { s := w.Stats(); return s.Held, s.Lanes })
	m.SetPause(w.OperatorPause)
	// The HTTP endpoints start before the worker joins, so /readyz answers
	// 503 (consuming) meanwhile instead of refusing connections. Every
	// check is there from the first answer: one added later would let
	// /readyz say 200 before the worker consumes.
	if addr := cmd.String("http-addr"); addr != "" && addr != "off" {
		hs, err := health.NewServer(health.Config{Addr: addr, Registry: reg, Logger: log,
			Checks: []health.Check{
				health.NATSConnected(nc.Status),
				health.BreakerClosed(w.BreakerState),
				health.DailyQuota(w.QuotaPaused),
				health.Credentials(w.Credentials),
				health.Consuming(w.Consuming),
				health.OperatorPause(w.OperatorPause),
			}})
		if err != nil {
			return err
		}
		if err := hs.Start(ctx); err != nil {
			return err
		}
		log.Info().Str("url", hs.URL()).Msg("serving /metrics, /healthz and /readyz")
		defer hs.Shutdown(context.Background()) // after the worker stopped: /metrics stays up while it drains
	}
	if cmd.String("gateway-addr") != "" {
		gw, err := startGateway(ctx, cmd, log, nc, js, tp)
		if err != nil {
			return err
		}
		defer shutdown(gw, "gateway", gatewayShutdownTimeout, log)
	}
	if runsConsole(cmd) {
		con, err := startConsole(ctx, cmd, log, js)
		if err != nil {
			return err
		}
		defer shutdown(con, "console", consoleShutdownTimeout, log)
	}
	sctx, cancel := context.WithTimeout(rctx, cmd.Duration("start-timeout"))
	err = w.Start(sctx)
	cancel()
	endRefusals()
	if err != nil {
		_ = w.Stop(context.Background())
		return startError(rctx, err)
	}
	<-ctx.Done()
	log.Info().Msg("signal received: stopping")
	return w.Stop(context.Background())
}
