package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/gateway"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// A producer without a NATS client posts events over HTTP; the gateway
// answers once JetStream has stored each one, with a result per event.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gateway-example")
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
	if err := pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{}); err != nil { // a worker does this
		panic(err)
	}
	pub, _ := pathupdate.NewPublisher(js, pathupdate.PublisherConfig{})
	const token = "0123456789abcdef0123456789abcdef"
	srv, err := gateway.NewServer(pub, gateway.Config{Addr: "127.0.0.1:0", Token: pathupdate.Secret(token)})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)

	body := `[{"token":"order-token","waybill_id":"SF1234567890","action_time":1767225600,"action_type":100001,"action_msg":"picked up"},
	          {"token":"order-token","waybill_id":"SF1234567890","action_time":1767225600,"action_type":999,"action_msg":"?"}]`
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+gateway.Path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var r gateway.Response
	_ = json.NewDecoder(resp.Body).Decode(&r)
	fmt.Println(resp.StatusCode, r.Accepted, r.Invalid)
	for _, res := range r.Results {
		fmt.Println(res.Index, res.Status)
	}
	// Output:
	// 207 1 1
	// 0 accepted
	// 1 invalid
}
