package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/history"
	"github.com/pathupdate/pathupdate/internal/assemble"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/retry"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// Defaults of Config.
const (
	WaybillsDefault         = 300
	EventsPerWaybillDefault = 10
	SystemErrorRateDefault  = 0.1
	UnknownShareDefault     = 0.05
	WrongTokenShareDefault  = 0.03
	TimeoutDefault          = 3 * time.Minute
)

// Config shapes a demo run. Zero fields take their defaults.
type Config struct {
	Waybills         int     // default WaybillsDefault
	EventsPerWaybill int     // default EventsPerWaybillDefault
	SystemErrorRate  float64 // share of calls the sandbox answers -1; default SystemErrorRateDefault (negative: none)
	UnknownShare     float64 // share of waybills never registered (40199); default UnknownShareDefault
	WrongTokenShare  float64 // share of waybills whose events carry a wrong token (9300507); default WrongTokenShareDefault
	Seed             uint64  // traffic and fault dice; 0 = from the clock
	DataDir          string  // JetStream store; default a temporary folder removed afterwards
	// KeepRunning leaves JetStream (on 127.0.0.1:4222), the sandbox and the
	// worker up after the summary, until ctx ends, so the other commands
	// (status, deadletter list/replay) can be tried on what the demo left.
	KeepRunning bool
	Timeout     time.Duration
	Logger      zerolog.Logger // the worker's log; default silent
	// Transport is the client's: pathupdate.TransportHTTPS (default) or
	// pathupdate.TransportCloudCall, which goes through the sandbox's
	// /tcb/invokecloudfunction with its default env and function.
	Transport string
	// TokenSource is the token source's kind: pathupdate.TokenSourceStable
	// (default) with the sandbox's credentials, or
	// pathupdate.TokenSourceNone, which calls the sandbox playing WeChat
	// Cloud Hosting's open-interface service with no token and no
	// credentials.
	TokenSource string
	// Progress receives how far the run is (published, delivered,
	// dead-lettered, in flight) while it runs; nil for none. The summary
	// goes to Run's out either way.
	Progress io.Writer
	// ProgressInPlace rewrites one line with a carriage return, for a
	// terminal; otherwise each report is a line of its own.
	ProgressInPlace bool
	// ProgressEvery is the time between reports; default
	// ProgressEveryInPlaceDefault in place, ProgressEveryLinesDefault
	// otherwise.
	ProgressEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Waybills == 0 {
		c.Waybills = WaybillsDefault
	}
	if c.EventsPerWaybill == 0 {
		c.EventsPerWaybill = EventsPerWaybillDefault
	}
	if c.SystemErrorRate == 0 {
		c.SystemErrorRate = SystemErrorRateDefault
	}
	if c.SystemErrorRate < 0 {
		c.SystemErrorRate = 0
	}
	if c.UnknownShare == 0 {
		c.UnknownShare = UnknownShareDefault
	}
	if c.WrongTokenShare == 0 {
		c.WrongTokenShare = WrongTokenShareDefault
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = ProgressEveryLinesDefault
		if c.ProgressInPlace {
			c.ProgressEvery = ProgressEveryInPlaceDefault
		}
	}
	return c
}

// Run starts everything, sends the sample traffic, waits until the worker
// has settled every message, checks the result and writes a summary to out.
// It returns an error when something the product promises did not hold.
func Run(ctx context.Context, cfg Config, out io.Writer) (Summary, error) {
	cfg = cfg.withDefaults()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	started := time.Now()
	// The seed first: a run worth repeating (a dead letter to replay, a
	// failure to look at) is repeated with --seed.
	fmt.Fprintf(out, "pathupdate demo: seed %d (run again with --seed %d for the same traffic)\n", cfg.Seed, cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	traces := makeTraffic(rng, cfg.Waybills, cfg.EventsPerWaybill, cfg.UnknownShare, cfg.WrongTokenShare)

	dir := cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "pathupdate-demo-")
		if err != nil {
			return Summary{}, fmt.Errorf("demo: temporary store: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	port := natsserver.RandomPort
	if cfg.KeepRunning {
		port = 4222 // where the other commands look by default
	}
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: port, StoreDir: dir, Logger: cfg.Logger})
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	defer ns.Shutdown()
	nc, err := ns.Connect(nats.Name("pathupdate-demo"))
	if err != nil {
		return Summary{}, fmt.Errorf("demo: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	// The delivery history, as a worker keeps it by default: `pathupdate
	// trace WAYBILL` reads it on what the demo left (--keep-running).
	if err := history.EnsureStream(ctx, js, history.StreamConfig{}); err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	hw, err := history.NewWriter(js, history.WriterConfig{Logger: cfg.Logger})
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hw.Close(cctx)
	}()

	none := cfg.TokenSource == pathupdate.TokenSourceNone
	sb := sandbox.NewServer(sandbox.Config{
		Faults:        sandbox.Faults{SystemErrorRate: cfg.SystemErrorRate},
		Seed:          int64(cfg.Seed),
		OpenInterface: none,
	})
	defer sb.Close()
	for _, tr := range traces {
		if tr.kind != kindUnknown {
			sb.AddOrder(tr.waybill, tr.token)
		}
	}
	w, err := assemble.Worker(js, assemble.Settings{
		Tokens: tokenSource(none),
		Client: pathupdate.ClientConfig{APIBase: sb.URL, HTTPClient: sb.Client(),
			Transport: cfg.Transport, CloudEnv: sandbox.DefaultCloudEnv, CloudFunction: sandbox.DefaultCloudFunction},
		Worker: worker.Config{
			History: hw,
			// Short waits so the demo ends in seconds; production keeps the defaults.
			Retry: retry.Policy{InitialInterval: 20 * time.Millisecond, MaxInterval: 500 * time.Millisecond},
		},
		Logger: cfg.Logger,
	})
	if err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	if err := w.Start(ctx); err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}
	defer w.Stop(context.Background())

	prog := &progress{out: cfg.Progress, inPlace: cfg.ProgressInPlace, every: cfg.ProgressEvery,
		total: len(garbage), stats: w.Stats}
	for _, tr := range traces {
		prog.total += len(tr.events)
	}
	settled, progressDone := make(chan struct{}), make(chan struct{})
	if cfg.Progress != nil {
		go prog.run(settled, progressDone)
		defer prog.end() // after an error: the message on a line of its own
	} else {
		close(progressDone)
	}
	published, err := publish(ctx, js, traces, &prog.published)
	if err == nil {
		err = waitSettled(ctx, js)
		if err != nil {
			err = fmt.Errorf("demo: waiting for the worker: %w", err)
		}
	} else {
		err = fmt.Errorf("demo: publish: %w", err)
	}
	close(settled)
	<-progressDone
	if err != nil {
		return Summary{}, err
	}
	s := summarize(traces, sb.Sandbox, w.Stats())
	s.Published = published
	s.Took = time.Since(started)
	if s.DeadLetters, err = countDeadLetters(ctx, js); err != nil {
		return s, fmt.Errorf("demo: reading dead letters: %w", err)
	}
	if cfg.Progress != nil {
		dead := 0
		for _, n := range s.DeadLetters {
			dead += n
		}
		prog.finish(w.Stats().Delivered, uint64(dead))
	}
	s.Write(out, cfg)
	if cfg.Transport == pathupdate.TransportCloudCall {
		fmt.Fprintf(out, "Delivered through the Cloud Call: POST /tcb/invokecloudfunction (env %s, function %s) on the sandbox\n",
			sandbox.DefaultCloudEnv, sandbox.DefaultCloudFunction)
	}
	if none {
		st := sb.Stats()
		fmt.Fprintf(out, "Delivered through the open-interface service of WeChat Cloud Hosting, played by the sandbox: no access_token on any call, token endpoints called %d times\n",
			st.StableTokenCalls+st.ClassicTokenCalls)
	}
	if err := s.Check(traces); err != nil || !cfg.KeepRunning {
		return s, err
	}
	fmt.Fprintf(out, "\nStill running until Ctrl-C: JetStream at %s, the WeChat sandbox at %s, the worker.\n", ns.ClientURL(), sb.URL)
	fmt.Fprintf(out, "In another terminal:\n")
	fmt.Fprintf(out, "  go run ./cmd/pathupdate status\n")
	fmt.Fprintf(out, "  go run ./cmd/pathupdate deadletter list --reason rejected --errcode 40199\n")
	fmt.Fprintf(out, "  curl -X POST %s/sandbox/orders -d '[{\"waybill_id\":\"<a waybill from the list>\",\"token\":\"<its token>\"}]'\n", sb.URL)
	fmt.Fprintf(out, "  go run ./cmd/pathupdate deadletter replay --waybill <that waybill>\n")
	fmt.Fprintf(out, "  go run ./cmd/pathupdate trace <that waybill>\n")
	<-parent.Done()
	return s, nil
}

// publish sends every trace event through the project's publisher, the
// way a Go producer would, interleaving waybills as a dispatch system
// does, then the garbage as raw NATS publishes.
func publish(ctx context.Context, js jetstream.JetStream, traces []trace, count *atomic.Int64) (int, error) {
	p, err := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	if err != nil {
		return 0, err
	}
	n := 0
	for step := 0; ; step++ {
		any := false
		for _, tr := range traces {
			if step >= len(tr.events) {
				continue
			}
			any = true
			if _, err := p.Publish(ctx, tr.events[step]); err != nil {
				return n, err
			}
			n++
			count.Add(1)
		}
		if !any {
			break
		}
	}
	for _, g := range garbage {
		if _, err := js.Publish(ctx, pathupdate.TraceSubject(g.waybill), []byte(g.body)); err != nil {
			return n, err
		}
		n++
		count.Add(1)
	}
	return n, nil
}

// waitSettled polls the trace stream until it is empty: with work-queue
// retention an event leaves it when a worker acks it.
func waitSettled(ctx context.Context, js jetstream.JetStream) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		st, err := js.Stream(ctx, pathupdate.TraceStream)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs == 0 {
			return nil
		}
	}
}

// countDeadLetters reads the dead-letter stream and counts by reason and errcode.
func countDeadLetters(ctx context.Context, js jetstream.JetStream) (map[string]int, error) {
	out := map[string]int{}
	st, err := js.Stream(ctx, pathupdate.DeadLetterStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r, err := deadletter.FromRawMsg(m)
		if err != nil {
			return nil, err
		}
		key := r.Reason
		if r.ErrCode != 0 {
			key = fmt.Sprintf("%s/%d", r.Reason, r.ErrCode)
		}
		out[key]++
	}
	return out, nil
}

// tokenSource is the demo worker's token source: the sandbox's credentials,
// or none at all for the open-interface service.
func tokenSource(none bool) pathupdate.TokenSourceConfig {
	if none {
		return pathupdate.TokenSourceConfig{Kind: pathupdate.TokenSourceNone}
	}
	return pathupdate.TokenSourceConfig{TokenConfig: pathupdate.TokenConfig{AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret)}}
}
