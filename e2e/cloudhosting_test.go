package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// TestCloudHostingOpenInterface is issue 19's "Done means": a worker with
// --token-source none and no credentials delivers traffic with retries
// (-1) and rejections (40199, 9300507) to the sandbox playing WeChat Cloud
// Hosting's open-interface service, in order, with the same dead letters
// as a worker on the HTTPS path given the same traffic; the sandbox records
// no token fetch. Then the service answers 85107 (path not whitelisted),
// then 41001 (service off): delivery pauses, nothing is dead-lettered,
// /readyz names the fix, and once the service takes calls again the held
// events are delivered and the worker is ready.
func TestCloudHostingOpenInterface(t *testing.T) {
	t.Parallel()
	type dead struct {
		waybill, reason string
		errcode         int
	}
	good := makeTraces("CHG", 24, 5)
	unknown := makeTraces("CHU", 3, 2) // never registered: 40199
	wrong := makeTraces("CHW", 2, 3)   // registered with another token: 9300507
	orders := map[string]string{}
	for _, tr := range good {
		orders[tr[0].WaybillID] = tr[0].Token
	}
	for _, tr := range wrong {
		orders[tr[0].WaybillID] = "the-registered-token"
	}
	traffic := slices.Concat(good, unknown, wrong)

	type run struct {
		js     jetstream.JetStream
		sb     *sandbox.Server
		readyz string
		dead   []dead
	}
	deliver := func(t *testing.T, none bool) run {
		r := run{sb: sandbox.NewServer(sandbox.Config{OpenInterface: none, Orders: orders, Seed: 19,
			Faults: sandbox.Faults{SystemErrorRate: 0.2}})}
		t.Cleanup(r.sb.Close)
		url := natstest.Start(t).ClientURL()
		_, r.js = connectTCP(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := pathupdate.EnsureStreams(ctx, r.js, pathupdate.StreamsConfig{}); err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(freeTCPPort(t))
		r.readyz = "http://127.0.0.1:" + port + "/readyz"
		o := workerOpts{Extra: []string{"--http-addr", "127.0.0.1:" + port}}
		if none {
			o.NoCredentials = true
			o.Extra = append(o.Extra, "--token-source", "none")
		}
		startChaosWorker(t, url, r.sb.URL, o)
		publishAll(ctx, t, r.js, traffic)
		waitUntil(t, "every event settled", time.Minute, func() bool { return drained(ctx, r.js, r.sb, good) })
		if dups := checkOrder(t, r.sb, good); dups != 0 {
			t.Fatalf("%d duplicate deliveries without any crash", dups)
		}
		for _, d := range readDeadLetters(ctx, t, r.js) {
			r.dead = append(r.dead, dead{d.WaybillID, d.Reason, d.ErrCode})
		}
		slices.SortFunc(r.dead, func(a, b dead) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		if st := r.sb.Stats(); st.ByErrcode[sandbox.ErrcodeSystemError] == 0 {
			t.Fatalf("sandbox stats %+v: no -1 answered, the run retried nothing", st)
		}
		return r
	}

	var https run
	t.Run("https", func(t *testing.T) { https = deliver(t, false) })
	if t.Failed() {
		return
	}
	t.Run("none", func(t *testing.T) {
		none := deliver(t, true)
		if len(https.dead) != 3*2+2*3 || !slices.Equal(https.dead, none.dead) {
			t.Fatalf("dead letters differ:\n https %v\n none  %v\nwant the same 12 rejections on both", https.dead, none.dead)
		}
		for _, c := range none.sb.Calls(good[0][0].WaybillID) {
			if c.Via != sandbox.ViaOpenInterface {
				t.Fatalf("call %+v did not come through the open-interface service", c)
			}
		}
		if st := none.sb.Stats(); st.StableTokenCalls+st.ClassicTokenCalls != 0 {
			t.Fatalf("sandbox stats %+v: the worker with --token-source none fetched a token", st)
		}
		// The worker runs on: the service now refuses its calls, first for
		// a path not on its whitelist, then as switched off.
		for i, tc := range []struct {
			answer sandbox.OpenInterfaceAnswer
			fix    string
		}{
			{sandbox.OpenInterfaceNotWhitelisted, "add /cgi-bin/express/delivery/path/update to the open-interface service's whitelist"},
			{sandbox.OpenInterfaceServiceOff, "switch on 开放接口服务 in the Cloud Hosting console"},
		} {
			t.Run("pause/"+string(tc.answer), func(t *testing.T) { pauses(t, none.js, none.sb, none.readyz, i, tc.answer, tc.fix, len(none.dead)) })
		}
	})
}

// pauses checks that the open-interface service answering answer pauses
// delivery without a dead letter, /readyz names fix, and that the held
// events go once the service takes calls again.
func pauses(t *testing.T, js jetstream.JetStream, sb *sandbox.Server, readyzURL string, i int, answer sandbox.OpenInterfaceAnswer, fix string, deadBefore int) {
	ctx := context.Background()
	held := makeTraces(fmt.Sprintf("CHP%d", i), 3, 2)
	for _, tr := range held {
		sb.AddOrder(tr[0].WaybillID, tr[0].Token)
	}
	if err := sb.SetOpenInterfaceAnswer(answer); err != nil {
		t.Fatal(err)
	}
	refused := sb.Stats().UpdateCalls
	publishAll(ctx, t, js, held)
	waitUntil(t, "/readyz naming the fix", 30*time.Second, func() bool {
		rep, ok := readyz(t, readyzURL)
		return !ok && strings.Contains(fmt.Sprint(rep.Checks), fix)
	})
	if sb.Stats().UpdateCalls == refused {
		t.Fatal("the worker made no call while the service refused them: the test proves nothing")
	}
	if n := len(readDeadLetters(ctx, t, js)); n != deadBefore {
		t.Fatalf("%d dead letters while the service refused calls, want still %d", n, deadBefore)
	}
	for _, tr := range held {
		if d := sb.Delivered(tr[0].WaybillID); len(d) != 0 {
			t.Fatalf("%s delivered while the service refused every call: %+v", tr[0].WaybillID, d)
		}
	}
	if err := sb.SetOpenInterfaceAnswer(sandbox.OpenInterfacePass); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the held events delivered and the worker ready again", time.Minute, func() bool {
		_, ok := readyz(t, readyzURL)
		return ok && drained(ctx, js, sb, held)
	})
	checkOrder(t, sb, held)
}

// readyz reads a worker's /readyz; ok is true for 200.
func readyz(t *testing.T, url string) (health.Report, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return health.Report{}, false // not listening yet
	}
	defer resp.Body.Close()
	var rep health.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return rep, resp.StatusCode == http.StatusOK
}
