package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
		port := strconv.Itoa(natstest.FreePort(t))
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

// TestCloudHostingDescriptor checks deploy/cloudhosting/container.config.json,
// WeChat Cloud Hosting's deploy descriptor, as far as a machine without the
// platform can: only the fields Cloud Hosting documents; the port it routes
// to and probes is the one the worker's HTTP server listens on, on every
// interface, and one the platform allows (1..61000, not 9100) and the
// image's non-root user can bind; instances never scale to zero (a
// consumer gets no requests to wake it); the worker calls through the
// open-interface service; and the binary accepts the settings as they
// stand (`worker --print-config` with exactly that environment).
func TestCloudHostingDescriptor(t *testing.T) {
	raw, err := os.ReadFile("../deploy/cloudhosting/container.config.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ContainerPort       int               `json:"containerPort"`
		DockerfilePath      string            `json:"dockerfilePath"`
		BuildDir            string            `json:"buildDir"`
		MinNum              int               `json:"minNum"`
		MaxNum              int               `json:"maxNum"`
		CPU                 float64           `json:"cpu"`
		Mem                 float64           `json:"mem"`
		PolicyType          string            `json:"policyType"`
		PolicyThreshold     int               `json:"policyThreshold"`
		EnvParams           map[string]string `json:"envParams"`
		CustomLogs          string            `json:"customLogs"`
		InitialDelaySeconds int               `json:"initialDelaySeconds"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("container.config.json: %v", err)
	}
	env := c.EnvParams
	if want := "0.0.0.0:" + strconv.Itoa(c.ContainerPort); env["PATHUPDATE_HTTP_ADDR"] != want {
		t.Errorf("PATHUPDATE_HTTP_ADDR %q, want %q: the platform routes to and probes containerPort", env["PATHUPDATE_HTTP_ADDR"], want)
	}
	if p := c.ContainerPort; p < 1024 || p > 61000 || p == 9100 {
		t.Errorf("containerPort %d: Cloud Hosting takes 1..61000 but not 9100, and the image's non-root user binds 1024 and above", p)
	}
	if c.MinNum < 1 || c.MaxNum < c.MinNum {
		t.Errorf("minNum %d, maxNum %d: keep at least one instance (at 0 the platform stops a worker after 30 min without requests)", c.MinNum, c.MaxNum)
	}
	if env["WECHAT_TOKEN_SOURCE"] != pathupdate.TokenSourceNone || env["WECHAT_API_BASE"] != pathupdate.OpenInterfaceAPIBase {
		t.Errorf("envParams %v: want WECHAT_TOKEN_SOURCE none and WECHAT_API_BASE %s", env, pathupdate.OpenInterfaceAPIBase)
	}
	if _, err := os.Stat(filepath.Join("..", c.BuildDir, c.DockerfilePath)); err != nil {
		t.Errorf("dockerfilePath %q in buildDir %q: %v", c.DockerfilePath, c.BuildDir, err)
	}
	cmd := exec.Command(binary, "worker", "--print-config")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"none"`) {
		t.Fatalf("worker --print-config with the descriptor's environment: %v\n%s", err, out)
	}
}
