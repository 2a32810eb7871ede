package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pathupdate/pathupdate/sandbox"
)

func listenLocal() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// resetProxy is a TCP proxy in front of the sandbox that resets its
// connections: each relays a random number of the sandbox's answer bytes
// (0 to budget, a few answers' worth on average) and is then closed with
// SO_LINGER 0, so the client reads ECONNRESET before, within or between
// answers, while the sandbox may already have taken the event. Clients
// keep connections alive, so resetting every one of them after a while is
// what makes resets frequent.
type resetProxy struct {
	URL    string
	ln     net.Listener
	target string
	budget int // most answer bytes a connection relays
	rng    *lockedRand
	resets atomic.Int64
	conns  atomic.Int64
	wg     sync.WaitGroup
}

func startResetProxy(t *testing.T, target string, budget int, rng *lockedRand) *resetProxy {
	t.Helper()
	ln, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{URL: "http://" + ln.Addr().String(), ln: ln, target: u.Host, budget: budget, rng: rng}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *resetProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		budget := int64(p.rng.IntN(p.budget + 1)) // answer bytes relayed before the reset
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.relay(c.(*net.TCPConn), budget) }()
	}
}

func (p *resetProxy) relay(client *net.TCPConn, budget int64) {
	defer client.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(up, client)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.CopyN(client, up, budget)
	_ = client.SetLinger(0) // close sends RST instead of FIN
	p.resets.Add(1)
}

// garbleProxy is an HTTP proxy in front of the sandbox that replaces some
// path/update answers with bodies that are not a JSON answer (an HTML
// error page, a cut-off object, nothing), keeping HTTP 200, as a
// misbehaving gateway would.
type garbleProxy struct {
	URL  string
	srv  *http.Server
	rate float64
	rng  *lockedRand
	// garbled counts rewritten answers; garbledDelivered those whose
	// original said errcode 0 (the sandbox took the event, the worker
	// cannot know: each must come back as exactly one more delivery).
	garbled, garbledDelivered atomic.Int64
}

var garbage = [...][]byte{
	[]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"),
	[]byte(`{"errcode":0,"errmsg":"o`),
	[]byte(""),
	[]byte("null"),
	[]byte(`["errcode",0]`),
	[]byte(`{"errcode":"0"}`),
}

func startGarbleProxy(t *testing.T, target string, rate float64, rng *lockedRand) *garbleProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &garbleProxy{rate: rate, rng: rng}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = g.modify
	ln, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	g.URL = "http://" + ln.Addr().String()
	g.srv = &http.Server{Handler: rp}
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() { _ = g.srv.Close() })
	return g
}

func (g *garbleProxy) modify(resp *http.Response) error {
	if resp.Request.URL.Path != sandbox.PathUpdatePath || g.rng.Float64() >= g.rate {
		return nil
	}
	orig, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	var a struct {
		ErrCode *int `json:"errcode"`
	}
	if resp.StatusCode == http.StatusOK && json.Unmarshal(orig, &a) == nil && a.ErrCode != nil && *a.ErrCode == 0 {
		g.garbledDelivered.Add(1)
	}
	g.garbled.Add(1)
	body := garbage[g.rng.IntN(len(garbage))]
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Content-Type", "text/html")
	return nil
}
