package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v3"

	"github.com/pathupdate/pathupdate/deadletter"
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
		Flags: append(append(append(wechatFlags(), streamFlags()...), gatewayFlags("")...),
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
			&cli.DurationFlag{Name: "start-timeout", Value: 2 * time.Minute, Usage: "how long to wait for JetStream (a cluster still electing its leader) at start", Sources: cli.EnvVars("PATHUPDATE_START_TIMEOUT")},
			&cli.StringFlag{Name: "http-addr", Value: health.AddrDefault, Usage: "address of /metrics, /healthz and /readyz (\"off\" for none)", Sources: cli.EnvVars("PATHUPDATE_HTTP_ADDR")},
			&cli.DurationFlag{Name: "retry-initial", Value: retry.InitialIntervalDefault, Usage: "first retry delay after -1/5xx/timeout", Sources: cli.EnvVars("PATHUPDATE_RETRY_INITIAL")},
			&cli.DurationFlag{Name: "retry-max", Value: retry.MaxIntervalDefault, Usage: "longest retry delay", Sources: cli.EnvVars("PATHUPDATE_RETRY_MAX")},
			&cli.IntFlag{Name: "retry-attempts", Value: retry.MaxAttemptsDefault, Usage: "attempts of one event failing on its own before retries_exhausted", Sources: cli.EnvVars("PATHUPDATE_RETRY_ATTEMPTS")},
			printConfigFlag(),
		),
		Action: runWorker,
	}
}

func wechatFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-base", Value: pathupdate.DefaultAPIBase, Usage: "WeChat API base URL", Sources: cli.EnvVars("WECHAT_API_BASE")},
		&cli.StringFlag{Name: "appid", Usage: "WeChat AppID", Sources: cli.EnvVars("WECHAT_APPID")},
		&cli.StringFlag{Name: "appsecret", Usage: "WeChat AppSecret (never logged)", Sources: cli.EnvVars("WECHAT_APPSECRET")},
		&cli.StringFlag{Name: "appsecret-file", Usage: "file holding the AppSecret", Sources: cli.EnvVars("WECHAT_APPSECRET_FILE")},
		&cli.StringFlag{Name: "token-source", Value: "stable", Usage: "access_token source: stable (safe for many workers), classic, or file", Sources: cli.EnvVars("WECHAT_TOKEN_SOURCE")},
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
	}
}

func streamsConfig(cmd *cli.Command) pathupdate.StreamsConfig {
	return pathupdate.StreamsConfig{
		Replicas:   cmd.Int("replicas"),
		Partitions: cmd.Int("partitions"),
		MaxAge:     cmd.Duration("max-age"),
		MaxBytes:   cmd.Int64("max-bytes"),
		Duplicates: cmd.Duration("duplicate-window"),
	}
}

// natsConn connects to --nats-url, or starts the embedded server when it is
// empty and embedded is allowed. The returned close func undoes both.
func natsConn(ctx context.Context, cmd *cli.Command, log zerolog.Logger, name string, embedded bool) (*nats.Conn, func(), error) {
	url := cmd.String("nats-url")
	if url != "" || !embedded {
		if url == "" {
			url = nats.DefaultURL
		}
		nc, err := connect(cmd, log, url, name)
		if err != nil {
			return nil, nil, err
		}
		return nc, nc.Close, nil
	}
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: cmd.Int("embedded-port"), StoreDir: cmd.String("data-dir"), Logger: log})
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

// apiClient builds the WeChat client from the settings, or from an
// in-process sandbox with --sandbox.
func apiClient(cmd *cli.Command, log zerolog.Logger, userAgent string, onFetch func(string, error)) (*pathupdate.Client, func(), error) {
	base := cmd.String("api-base")
	appid := cmd.String("appid")
	secret, err := secretSetting(cmd, "appsecret", "appsecret-file")
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() {}
	hc := pathupdate.NewHTTPClient(pathupdate.DefaultHTTPTimeout)
	hc.Transport = userAgentTransport{base: hc.Transport, agent: userAgent}
	transport, cloudEnv, cloudFn := cmd.String("transport"), cmd.String("cloud-env"), cmd.String("cloud-function")
	if cmd.Bool("sandbox") {
		sbcfg := sandbox.Config{AcceptAnyWaybill: true}
		if transport == pathupdate.TransportCloudCall { // the sandbox accepts whatever env and function were asked for
			sbcfg.CloudEnv, sbcfg.CloudFunction = cloudEnv, cloudFn
		}
		sb := sandbox.NewServer(sbcfg)
		closeFn = sb.Close
		base, appid, secret = sb.URL, sandbox.DefaultAppID, pathupdate.Secret(sandbox.DefaultAppSecret)
		log.Warn().Str("url", sb.URL).Msg("delivering to an in-process WeChat sandbox, not to WeChat (see GET " + sb.URL + "/sandbox/received)")
	}
	tcfg := pathupdate.TokenConfig{APIBase: base, AppID: appid, AppSecret: secret, HTTPClient: hc, Logger: log, OnFetch: onFetch}
	var tokens pathupdate.TokenSource
	switch src := cmd.String("token-source"); src {
	case "stable", "classic", "":
		if appid == "" || secret == "" {
			closeFn()
			return nil, nil, errors.New("no WeChat credentials: set WECHAT_APPID and WECHAT_APPSECRET (or --appid and --appsecret / --appsecret-file), " +
				"or use --token-source file with --access-token-file, or run with --sandbox to try it against a local sandbox")
		}
		if src != "classic" {
			tokens, err = pathupdate.NewStableTokenSource(tcfg)
		} else {
			tokens, err = pathupdate.NewClassicTokenSource(tcfg)
		}
	case "file":
		if cmd.String("access-token-file") == "" {
			closeFn()
			return nil, nil, errors.New("--token-source file needs --access-token-file (WECHAT_ACCESS_TOKEN_FILE)")
		}
		tokens, err = pathupdate.NewFileTokenSource(cmd.String("access-token-file"), tcfg)
	default:
		closeFn()
		return nil, nil, fmt.Errorf("--token-source %q: use stable, classic or file", src)
	}
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	c, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: base, Tokens: tokens, HTTPClient: hc, Logger: log,
		Transport: transport, CloudEnv: cloudEnv, CloudFunction: cloudFn})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return c, closeFn, nil
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
	log, err := logger(cmd)
	if err != nil {
		return err
	}
	memberID := worker.NewMemberID()
	wcfg := worker.Config{
		Consumer:        cmd.String("consumer"),
		MaxInFlight:     cmd.Int("max-in-flight"),
		Concurrency:     cmd.Int("concurrency"),
		AckWait:         cmd.Duration("ack-wait"),
		PinnedTTL:       cmd.Duration("pinned-ttl"),
		MemberTTL:       cmd.Duration("member-ttl"),
		MemberID:        memberID,
		ShutdownTimeout: cmd.Duration("shutdown-timeout"),
		Retry: retry.Policy{
			InitialInterval: cmd.Duration("retry-initial"),
			MaxInterval:     cmd.Duration("retry-max"),
			MaxAttempts:     cmd.Int("retry-attempts"),
		},
		Logger: log,
	}
	if err := wcfg.WithDefaults().Validate(); err != nil {
		return err
	}
	scfg := streamsConfig(cmd)
	if err := scfg.WithDefaults().Validate(); err != nil {
		return err
	}
	// Token fetches happen only once the worker calls the API, after m is
	// set below.
	var m *metrics.Metrics
	client, closeAPI, err := apiClient(cmd, log, "pathupdate-worker/"+memberID, func(src string, err error) { m.TokenFetched(src, err) })
	if err != nil {
		return err
	}
	defer closeAPI()
	nc, closeNATS, err := natsConn(ctx, cmd, log, "pathupdate-worker", true)
	if err != nil {
		return err
	}
	defer closeNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := untilJetStreamAnswers(ctx, log, cmd.Duration("start-timeout"), func(ctx context.Context) error {
		return pathupdate.EnsureStreams(ctx, js, scfg)
	}); err != nil {
		return err
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
	wcfg.Observer = m

	// The HTTP endpoints start before the worker joins, so /readyz answers
	// 503 (consuming) meanwhile instead of refusing connections.
	var hs *health.Server
	if addr := cmd.String("http-addr"); addr != "" && addr != "off" {
		hs, err = health.NewServer(health.Config{Addr: addr, Registry: reg, Logger: log,
			Checks: []health.Check{health.NATSConnected(nc.Status)}})
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
		gw, err := startGateway(ctx, cmd, log, nc, js)
		if err != nil {
			return err
		}
		defer stopGateway(gw, log)
	}
	w, err := worker.New(js, client, deadletter.NewWriter(js, deadletter.WriterConfig{Logger: log}), wcfg)
	if err != nil {
		return err
	}
	m.SetLoad(func() (int, int) { s := w.Stats(); return s.Held, s.Lanes })
	if hs != nil {
		if err := hs.Handler().AddCheck(health.BreakerClosed(w.BreakerState)); err != nil {
			return err
		}
		if err := hs.Handler().AddCheck(health.Credentials(w.Credentials)); err != nil {
			return err
		}
		if err := hs.Handler().AddCheck(health.Consuming(w.Consuming)); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, cmd.Duration("start-timeout"))
	err = w.Start(sctx)
	cancel()
	if err != nil {
		_ = w.Stop(context.Background())
		return err
	}
	<-ctx.Done()
	log.Info().Msg("signal received: stopping")
	return w.Stop(context.Background())
}

// userAgentTransport names the worker in every request, so a WeChat
// gateway log (or the sandbox's record) tells which worker called.
type userAgentTransport struct {
	base  http.RoundTripper
	agent string
}

func (t userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", t.agent)
	return t.base.RoundTrip(r)
}

// untilJetStreamAnswers runs f until it succeeds, the error is one that
// waiting cannot fix (a partition count that differs from the stream's),
// or limit passes: a worker started together with its NATS cluster waits
// for the cluster to elect a leader instead of exiting.
func untilJetStreamAnswers(ctx context.Context, log zerolog.Logger, limit time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	wait := 250 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(actx)
		cancel()
		var mismatch *pathupdate.PartitionsMismatchError
		if err == nil || errors.As(err, &mismatch) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("JetStream not ready; waiting")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
