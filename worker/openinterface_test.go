package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// TestOpenInterfaceBlockedShowsInHealth: a client calling through WeChat
// Cloud Hosting's open-interface service is a worker.Blocker; while the
// service refuses its calls (85107: the path is not whitelisted) the
// worker's Health and Credentials name the fix, nothing is dead-lettered,
// and once the service takes calls the events are delivered and the
// problem is gone.
func TestOpenInterfaceBlockedShowsInHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Config{OpenInterface: true})
	api, err := pathupdate.NewClient(pathupdate.ClientConfig{APIBase: b.sb.URL, Tokens: pathupdate.NewNoTokenSource(), HTTPClient: b.sb.Client()})
	if err != nil {
		t.Fatal(err)
	}
	b.api = api
	if err := b.sb.SetOpenInterfaceAnswer(sandbox.OpenInterfaceNotWhitelisted); err != nil {
		t.Fatal(err)
	}
	trs := traces("OI", 4, 3)
	b.register(trs)
	b.publishInterleaved(t, trs)
	w := b.startWorker(t, worker.Config{})
	const fix = "add /cgi-bin/express/delivery/path/update to the open-interface service's whitelist"
	waitUntil(t, 10*time.Second, "Health naming the whitelist fix", func() bool {
		err := w.Credentials()
		return strings.Contains(w.Health().Why, fix) && err != nil && strings.Contains(err.Error(), fix)
	})
	if n := len(b.deadLetters(t)); n != 0 {
		t.Fatalf("%d dead letters while the service refused calls", n)
	}
	if err := b.sb.SetOpenInterfaceAnswer(sandbox.OpenInterfacePass); err != nil {
		t.Fatal(err)
	}
	b.waitSettled(t, 30*time.Second)
	b.checkDelivered(t, trs)
	if err := w.Credentials(); err != nil || w.Health().Why != "" {
		t.Fatalf("after delivery: Credentials %v, Health %+v; want nothing blocking", err, w.Health())
	}
}
