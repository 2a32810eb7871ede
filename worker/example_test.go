package worker_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/deadletter"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// doneAfter signals each settled event.
type doneAfter struct {
	worker.NopObserver
	seen chan struct{}
}

func (o *doneAfter) Settled(worker.Settlement) { o.seen <- struct{}{} }

// A worker on a JetStream server delivers a waybill's events to WeChat (here
// the sandbox) in the order they were published.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "pathupdate-example")
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
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil {
		panic(err)
	}

	wechat := sandbox.NewServer(sandbox.Config{Orders: map[string]string{"SF1234567890": "order-token"}})
	defer wechat.Close()
	tokens, _ := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{APIBase: wechat.URL,
		AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret), HTTPClient: wechat.Client()})
	api, _ := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: wechat.URL, Tokens: tokens, HTTPClient: wechat.Client()})

	settled := &doneAfter{seen: make(chan struct{}, 3)}
	w, err := worker.New(js, api, deadletter.NewWriter(js, deadletter.WriterConfig{}), worker.Config{Observer: settled})
	if err != nil {
		panic(err)
	}
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop(ctx)

	pub, _ := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	for i, step := range []string{"picked up", "in transit", "signed"} {
		ev := pathupdate.Event{Token: "order-token", WaybillID: "SF1234567890", ActionTime: 1_767_225_600 + int64(i),
			ActionType: pathupdate.ActionInTransit, ActionMsg: step}
		if _, err := pub.Publish(ctx, ev); err != nil {
			panic(err)
		}
	}
	for range 3 {
		select {
		case <-settled.seen:
		case <-time.After(30 * time.Second):
			panic("not delivered")
		}
	}
	for _, c := range wechat.Delivered("SF1234567890") {
		fmt.Println(c.ActionMsg)
	}
	// Output:
	// picked up
	// in transit
	// signed
}
