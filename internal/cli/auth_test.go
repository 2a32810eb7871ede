package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/natsserver"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
	"github.com/pathupdate/pathupdate/worker"
)

// isolateEnv unsets every variable the commands read (NATS_*, WECHAT_*,
// PATHUPDATE_*) for the test, so the caller's environment cannot change
// an outcome. Tests that call it cannot be parallel.
func isolateEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "NATS_") || strings.HasPrefix(k, "WECHAT_") || strings.HasPrefix(k, "PATHUPDATE_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
}

// output collects everything commands write, from any goroutine.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor polls s's output until re matches (there is no event to wait
// on: the line is written by the command) and returns the first submatch.
func (o *output) waitFor(t *testing.T, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output matching %s within %s; output:\n%s", re, within, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runInto runs a command line with stdout and stderr both written to out
// and returns its exit code and what this run wrote.
func runInto(ctx context.Context, out *output, stdin string, args ...string) (int, string) {
	var mine output
	w := multiWriter{out, &mine}
	code := cli.Run(ctx, append([]string{"pathupdate"}, args...), strings.NewReader(stdin), w, w)
	return code, mine.String()
}

type multiWriter [2]*output

func (m multiWriter) Write(p []byte) (int, error) {
	m[0].Write(p)
	return m[1].Write(p)
}

// pki is a CA, a server certificate for 127.0.0.1 and a client
// certificate signed by it, and an unrelated CA, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey, otherCA string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	serial := int64(0)
	mk := func(tmpl, parent *x509.Certificate, pub, signer any) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}

	caKey := newKey()
	ca, caDER := mk(caTmpl("pathupdate test CA"), nil, &caKey.PublicKey, caKey)
	srvKey := newKey()
	_, srvDER := mk(&x509.Certificate{Subject: pkix.Name{CommonName: "nats"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		ca, &srvKey.PublicKey, caKey)
	cliKey := newKey()
	_, cliDER := mk(&x509.Certificate{Subject: pkix.Name{CommonName: "pathupdate"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &cliKey.PublicKey, caKey)
	otherKey := newKey()
	_, otherDER := mk(caTmpl("some other CA"), nil, &otherKey.PublicKey, otherKey)

	return pki{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", srvDER),
		serverKey:  write("server-key.pem", "PRIVATE KEY", keyDER(srvKey)),
		clientCert: write("client.pem", "CERTIFICATE", cliDER),
		clientKey:  write("client-key.pem", "PRIVATE KEY", keyDER(cliKey)),
		otherCA:    write("other-ca.pem", "CERTIFICATE", otherDER),
	}
}

// startServer starts an embedded JetStream server on port (RandomPort for
// any) storing in dir, configured further by opts, and stops it when the
// test ends.
func startServer(t *testing.T, port int, dir string, opts func(*server.Options)) *natsserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, natsserver.Config{Port: port, StoreDir: dir, Options: opts, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func userPassword(user, password string) func(*server.Options) {
	return func(o *server.Options) { o.Username, o.Password = user, password }
}

// mutualTLS requires TLS with a client certificate signed by p's CA.
func mutualTLS(t *testing.T, p pki) func(*server.Options) {
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.ca, Verify: true, Timeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) { o.TLSConfig, o.TLSVerify, o.TLSTimeout = tc, true, 2 }
}

// ensureStreams creates the streams as a worker would, over a connection
// made with opts.
func ensureStreams(t *testing.T, url string, opts ...nats.Option) {
	t.Helper()
	adminJS(t, url, func(ctx context.Context, js jetstream.JetStream) error {
		return pathupdate.EnsureStreams(ctx, js, pathupdate.StreamsConfig{})
	}, opts...)
}

// hasCommand: the status command may not exist yet in every tree.
func hasCommand(name string) bool {
	var b bytes.Buffer
	return cli.New(strings.NewReader(""), &b, &b).Command(name) != nil
}

// connectingCommands runs every command that connects to NATS with the
// given connection flags and reports failures. waybill is published by
// publish, then delivered by a worker, and posted to a gateway.
func connectingCommands(t *testing.T, conn []string, waybill string) {
	t.Helper()
	connectingCommandsTolerating(t, conn, waybill, "")
}

// connectingCommandsTolerating is connectingCommands where a refused
// subject whose line names tolerate is allowed ("": none is).
func connectingCommandsTolerating(t *testing.T, conn []string, waybill, tolerate string) {
	t.Helper()
	ctx := context.Background()
	sb := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	t.Cleanup(sb.Close)
	var out output

	code, got := runInto(ctx, &out, line(waybill, "t", 1)+"\n", append([]string{"publish"}, conn...)...)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, got)
	}
	for _, args := range [][]string{{"deadletter", "list"}, {"status"}, {"pause", "--for", "1h"}, {"resume"}} {
		if !hasCommand(args[0]) {
			continue
		}
		if code, got := runInto(ctx, &out, "", append(args, conn...)...); code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, got)
		}
	}

	// The worker delivers the event, and a gateway inside it takes one.
	wctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var wout output
	go func() {
		code, _ := runInto(wctx, &wout, "", append([]string{"worker", "--api-base", sb.URL, "--appid", sandbox.DefaultAppID,
			"--appsecret", sandbox.DefaultAppSecret, "--http-addr", "off", "--gateway-addr", "127.0.0.1:0",
			"--gateway-token", gatewayTestToken, "--log-format", "json"}, conn...)...)
		done <- code
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("worker exit %d: %s", code, wout.String())
		}
		for _, l := range strings.Split(wout.String()+out.String(), "\n") {
			if strings.Contains(l, "Permissions Violation") && (tolerate == "" || !strings.Contains(l, tolerate)) {
				t.Errorf("a command was refused a subject:\n%s\n%s", out.String(), wout.String())
				break
			}
		}
		if tolerate != "" && !strings.Contains(wout.String(), "may not subscribe to "+worker.PinnedAdvisories) {
			t.Errorf("the worker did not say the subscription it was refused:\n%s", wout.String())
		}
	}()
	addr := wout.waitFor(t, regexp.MustCompile(`"addr":"([^"]+)","path":"/v1/events"`), 20*time.Second)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(line(waybill, "t", 2)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+gatewayTestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway answered %d", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(sb.Delivered(waybill)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 events delivered; worker output:\n%s", len(sb.Delivered(waybill)), wout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSUserPassword: every command that connects authenticates with
// --user/--password or NATS_USER/NATS_PASSWORD; a wrong password fails
// with an error naming both variables and showing neither password.
func TestNATSUserPassword(t *testing.T) {
	isolateEnv(t)
	const user, password, wrong = "svc", "Pw-4f2a9c1e7b", "Wrong-9d8e7f"
	s := startServer(t, natsserver.RandomPort, t.TempDir(), userPassword(user, password))
	url := s.ClientURL()
	ensureStreams(t, url, nats.UserInfo(user, password))

	t.Run("every command with flags", func(t *testing.T) {
		connectingCommands(t, []string{"--nats-url", url, "--user", user, "--password", password}, "AUTHFLAGS")
	})
	passwordFile := filepath.Join(t.TempDir(), "nats-password")
	if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("every command with the password in a file", func(t *testing.T) {
		connectingCommands(t, []string{"--nats-url", url, "--user", user, "--password-file", passwordFile}, "AUTHFILE")
	})
	least := func(t *testing.T, subscribe ...string) string {
		s := startServer(t, natsserver.RandomPort, t.TempDir(), func(o *server.Options) {
			o.Users = []*server.User{{Username: "admin", Password: "admin-pass"}, {Username: "least", Password: "least-pass",
				Permissions: &server.Permissions{
					Publish:   &server.SubjectPermission{Allow: []string{"logistics.>", "$JS.API.>", "$JS.ACK.>", "$KV.pathupdate_workers.>", "$KV.pathupdate_quota.>", "$KV.pathupdate_pause.>"}},
					Subscribe: &server.SubjectPermission{Allow: subscribe},
				}}}
		})
		ensureStreams(t, s.ClientURL(), nats.UserInfo("admin", "admin-pass"))
		return s.ClientURL()
	}
	t.Run("every command as a user with only the permissions README lists", func(t *testing.T) {
		url := least(t, "_INBOX.>", worker.PinnedAdvisories)
		connectingCommands(t, []string{"--nats-url", url, "--user", "least", "--password", "least-pass"}, "AUTHLEAST")
	})
	// The pin advisories are optional: a user granted only what older
	// versions needed still runs every command, and the worker says what
	// it lacks.
	t.Run("every command without the pin advisories", func(t *testing.T) {
		url := least(t, "_INBOX.>")
		connectingCommandsTolerating(t, []string{"--nats-url", url, "--user", "least", "--password", "least-pass"}, "AUTHNOPIN", worker.PinnedAdvisories[:len(worker.PinnedAdvisories)-1])
	})
	t.Run("publish with the environment", func(t *testing.T) {
		t.Setenv("NATS_URL", url)
		t.Setenv("NATS_USER", user)
		t.Setenv("NATS_PASSWORD", password)
		var out output
		if code, got := runInto(context.Background(), &out, line("AUTHENV", "t", 1)+"\n", "publish"); code != 0 {
			t.Fatalf("exit %d: %s", code, got)
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"wrong password", []string{"--user", user, "--password", wrong}, []string{"NATS_USER", "NATS_PASSWORD", `"` + user + `"`}},
		{"no credentials", nil, []string{"requires authentication", "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS"}},
		{"password in the URL", []string{"--nats-url", strings.Replace(url, "nats://", "nats://"+user+":"+wrong+"@", 1)}, []string{"REDACTED@", "--nats-url (NATS_URL)"}},
		{"password without user", []string{"--password", password}, []string{"--user", "NATS_USER"}},
		{"password file without user", []string{"--password-file", passwordFile}, []string{"--user", "NATS_USER"}},
		{"password and its file", []string{"--user", user, "--password", password, "--password-file", passwordFile}, []string{"--password and --password-file are both set"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--nats-url", url}, tt.args...)
			for _, cmd := range [][]string{{"publish"}, {"deadletter", "list"}, {"gateway", "--gateway-token", gatewayTestToken, "--gateway-addr", "127.0.0.1:0"},
				{"worker", "--sandbox", "--http-addr", "off"}} {
				var out output
				code, got := runInto(context.Background(), &out, line("AUTHBAD", "t", 1)+"\n", append(cmd, args...)...)
				if code == 0 {
					t.Fatalf("%s: exit 0, want a failure: %s", cmd[0], got)
				}
				t.Logf("%s: %s", cmd[0], got)
				for _, w := range tt.want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: the error does not say %q: %s", cmd[0], w, got)
					}
				}
				for _, secret := range []string{password, wrong} {
					if strings.Contains(got, secret) {
						t.Errorf("%s: the output shows a password: %s", cmd[0], got)
					}
				}
			}
		})
	}
}

// TestNATSMutualTLS: every command that connects verifies the server with
// --tlsca and shows its own certificate with --tlscert/--tlskey (or
// NATS_CA, NATS_CERT, NATS_KEY); a wrong CA, a missing client certificate
// or half a pair fail with an error naming the settings to fix.
func TestNATSMutualTLS(t *testing.T) {
	isolateEnv(t)
	p := newPKI(t)
	s := startServer(t, natsserver.RandomPort, t.TempDir(), mutualTLS(t, p))
	url := s.ClientURL() // tls://127.0.0.1:port
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("server URL %s: TLS is not on", url)
	}
	ensureStreams(t, url, nats.RootCAs(p.ca), nats.ClientCert(p.clientCert, p.clientKey))

	t.Run("every command with flags", func(t *testing.T) {
		connectingCommands(t, []string{"--nats-url", url, "--tlsca", p.ca, "--tlscert", p.clientCert, "--tlskey", p.clientKey}, "TLSFLAGS")
	})
	t.Run("publish with the environment and a nats:// URL", func(t *testing.T) {
		t.Setenv("NATS_URL", strings.Replace(url, "tls://", "nats://", 1)) // the server's INFO asks for TLS
		t.Setenv("NATS_CA", p.ca)
		t.Setenv("NATS_CERT", p.clientCert)
		t.Setenv("NATS_KEY", p.clientKey)
		var out output
		if code, got := runInto(context.Background(), &out, line("TLSENV", "t", 1)+"\n", "publish"); code != 0 {
			t.Fatalf("exit %d: %s", code, got)
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"CA that did not sign the server", []string{"--tlsca", p.otherCA, "--tlscert", p.clientCert, "--tlskey", p.clientKey},
			[]string{"not signed by the CA in --tlsca", "NATS_CA"}},
		{"no CA", []string{"--tlscert", p.clientCert, "--tlskey", p.clientKey}, []string{"--tlsca", "NATS_CA"}},
		{"no client certificate", []string{"--tlsca", p.ca}, []string{"--tlscert", "--tlskey", "NATS_CERT", "NATS_KEY"}},
		{"certificate without key", []string{"--tlsca", p.ca, "--tlscert", p.clientCert}, []string{"--tlskey"}},
		{"CA file missing", []string{"--tlsca", filepath.Join(t.TempDir(), "none.pem")}, []string{"--tlsca"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--nats-url", url}, tt.args...)
			for _, cmd := range [][]string{{"publish"}, {"deadletter", "list"}, {"worker", "--sandbox", "--http-addr", "off"}} {
				var out output
				code, got := runInto(context.Background(), &out, line("TLSBAD", "t", 1)+"\n", append(cmd, args...)...)
				if code == 0 {
					t.Fatalf("%s: exit 0, want a failure: %s", cmd[0], got)
				}
				t.Logf("%s: %s", cmd[0], got)
				for _, w := range tt.want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: the error does not say %q: %s", cmd[0], w, got)
					}
				}
			}
		})
	}
}

// TestNATSAuthErrorsAreReadable is the whole message for the two most
// common mistakes, so a reviewer sees what a user sees.
func TestNATSAuthErrorsAreReadable(t *testing.T) {
	isolateEnv(t)
	s := startServer(t, natsserver.RandomPort, t.TempDir(), userPassword("svc", "right-password"))
	var out output
	_, got := runInto(context.Background(), &out, "", "publish", "--nats-url", s.ClientURL(), "--user", "svc", "--password", "not-it")
	want := fmt.Sprintf("pathupdate: connect to NATS at %s: nats: Authorization Violation (the server refused user \"svc\": "+
		"check --user and --password (NATS_USER and NATS_PASSWORD))\n", s.ClientURL())
	if got != want {
		t.Fatalf("output\n%q\nwant\n%q", got, want)
	}
}
