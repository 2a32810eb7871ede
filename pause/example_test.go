package pause_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/pause"
)

// Pausing a deployment's delivery until resumed, and resuming it, as
// `pathupdate pause` and `pathupdate resume` do. No worker has run yet,
// so its consumers do not exist: the first worker creates them paused.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "pathupdate-pause-example")
	defer os.RemoveAll(dir)
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: natsserver.RandomPort, StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{Partitions: 4}); err != nil {
		panic(err)
	}

	target, err := pause.TargetOf(ctx, js, "pathupdate") // the workers' --consumer
	if err != nil {
		panic(err)
	}
	st, err := pause.Pause(ctx, js, target, time.Time{})
	if err != nil {
		panic(err)
	}
	fmt.Println(st, "-", st.Missing(), "consumers to be created paused")
	if _, err := pause.Pause(ctx, js, target, time.Now().Add(-time.Minute)); err != nil {
		fmt.Println("a minute ago:", errors.Is(err, pause.ErrUntilPast))
	}
	st, err = pause.Resume(ctx, js, target)
	if err != nil {
		panic(err)
	}
	fmt.Println(st)
	// Output:
	// paused until resumed - 5 consumers to be created paused
	// a minute ago: true
	// not paused
}
