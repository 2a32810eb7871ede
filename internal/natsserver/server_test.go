package natsserver_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJetStreamUsable(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)

	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data()) != "hello" || msg.Subject() != "t.a" {
		t.Fatalf("got %q on %s, want hello on t.a", msg.Data(), msg.Subject())
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	// Other processes reach it over TCP at ClientURL.
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("TCP connect to %s: %v", s.ClientURL(), err)
	}
	defer nc.Close()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestRestartKeepsMessages(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	cfg := natsserver.Config{Port: natsserver.RandomPort, StoreDir: t.TempDir()}

	s, err := natsserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "t.a", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()
	s.Shutdown() // idempotent

	s2, err := natsserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart on the same StoreDir: %v", err)
	}
	defer s2.Shutdown()
	nc2, err := s2.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	st, err := js2.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("message %d after restart: %v", ack.Sequence, err)
	}
	if string(m.Data) != "kept" {
		t.Fatalf("after restart: %q, want kept", m.Data)
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // after the parallel subtests, unlike defer
	port := l.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		cfg  natsserver.Config
		want []string
	}{
		{"client port", natsserver.Config{Port: port},
			[]string{"127.0.0.1:" + strconv.Itoa(port), "client port", "--nats-url", "another port"}},
		{"cluster port", natsserver.Config{Port: natsserver.RandomPort, ServerName: "n1",
			Cluster: &natsserver.ClusterConfig{Name: "c", Port: port}},
			[]string{"127.0.0.1:" + strconv.Itoa(port), "cluster port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.StoreDir = t.TempDir()
			start := time.Now()
			s, err := natsserver.Start(ctxFor(t), tt.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start on a port in use succeeded")
			}
			if !errors.Is(err, natsserver.ErrPortInUse) {
				t.Fatalf("error %v does not match ErrPortInUse", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// It must fail on the error, not on the start timeout.
			if d := time.Since(start); d > natsserver.StartTimeoutDefault/2 {
				t.Errorf("Start took %s to report the port in use", d)
			}
		})
	}
}

func TestStartContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := natsserver.Start(ctx, natsserver.Config{Port: natsserver.RandomPort, StoreDir: t.TempDir()})
	if err == nil {
		s.Shutdown()
		t.Fatal("Start with an ended context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with an ended context = %v, want context.Canceled", err)
	}
}

func TestLogRouting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level       zerolog.Level
		wantNotices bool
	}{
		{zerolog.DebugLevel, true},
		{zerolog.InfoLevel, false},
	} {
		t.Run(tt.level.String(), func(t *testing.T) {
			t.Parallel()
			var buf natstest.SyncBuffer
			s, err := natsserver.Start(ctxFor(t), natsserver.Config{
				Port: natsserver.RandomPort, StoreDir: t.TempDir(),
				Logger: zerolog.New(&buf).Level(tt.level),
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Shutdown()
			out := buf.String()
			got := strings.Contains(out, `"level":"debug","component":"nats-server","message":"Starting nats-server"`)
			if got != tt.wantNotices {
				t.Fatalf("logger at %s: notices logged at debug = %v, want %v; log:\n%s", tt.level, got, tt.wantNotices, out)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     natsserver.Config
		wantErr string
	}{
		{"minimal", natsserver.Config{StoreDir: "d"}, ""},
		{"no store dir", natsserver.Config{}, "Config.StoreDir"},
		{"bad port", natsserver.Config{StoreDir: "d", Port: 70000}, "Config.Port"},
		{"cluster without name", natsserver.Config{StoreDir: "d", ServerName: "n1", Cluster: &natsserver.ClusterConfig{}}, "Config.Cluster.Name"},
		{"cluster without server name", natsserver.Config{StoreDir: "d", Cluster: &natsserver.ClusterConfig{Name: "c"}}, "Config.ServerName"},
		{"cluster bad port", natsserver.Config{StoreDir: "d", ServerName: "n1", Cluster: &natsserver.ClusterConfig{Name: "c", Port: -5}}, "Config.Cluster.Port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg.WithDefaults()
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
			}
			if c.Host != natsserver.HostDefault || c.Port == 0 {
				t.Fatalf("WithDefaults left host %q port %d", c.Host, c.Port)
			}
			if tt.wantErr != "" {
				if _, err := natsserver.Start(context.Background(), tt.cfg); err == nil {
					t.Fatal("Start accepted an invalid config")
				}
			}
		})
	}
}
