package cli_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/cli"
)

// TestPrintConfigRedactsSecrets: every secret, however it was given,
// shows as [redacted] when set and "" when not; a password in the NATS
// URL is replaced; nothing connects (the URL points nowhere) and the exit
// status is 0.
func TestPrintConfigRedactsSecrets(t *testing.T) {
	isolateEnv(t)
	const password, natsToken, appSecret, gatewayToken = "Pw-print-1", "Tk-print-2", "As-print-3", "Gw-print-4-0123456789"
	t.Setenv("NATS_TOKEN", natsToken)
	file := writeConfig(t, "appsecret: "+appSecret+"\n")
	var out output
	code, got := runInto(context.Background(), &out, "", "worker", "--print-config", "--config", file, "--appid", "wx-print",
		"--nats-url", "nats://svc:"+password+"@127.0.0.1:1", "--user", "svc", "--password", password, "--gateway-token", gatewayToken)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, got)
	}
	for _, s := range []string{password, natsToken, appSecret, gatewayToken} {
		if strings.Contains(got, s) {
			t.Errorf("a secret is printed:\n%s", got)
		}
	}
	settings := printed(t, "worker", "--print-config", "--config", file, "--nats-url", "nats://svc:"+password+"@127.0.0.1:1",
		"--password", password, "--user", "svc", "--gateway-token", gatewayToken)
	for name, want := range map[string][2]string{
		"password":      {"[redacted]", "flag"},
		"token":         {"[redacted]", "env NATS_TOKEN"},
		"appsecret":     {"[redacted]", "file " + file},
		"gateway-token": {"[redacted]", "flag"},
		"nats-url":      {`"nats://REDACTED@127.0.0.1:1"`, "flag"},
		"creds":         {`""`, "default"},
	} {
		if settings[name] != want {
			t.Errorf("%s: %v, want %v", name, settings[name], want)
		}
	}
	isolateEnv(t)
	if got := printed(t, "worker", "--print-config")["appsecret"]; got != [2]string{`""`, "default"} {
		t.Errorf("an unset secret prints as %v", got)
	}
}

// TestPrintConfigListsEveryWorkerSetting: each flag of the worker
// command and each global flag has its line.
func TestPrintConfigListsEveryWorkerSetting(t *testing.T) {
	isolateEnv(t)
	settings := printed(t, "worker", "--print-config")
	var b bytes.Buffer
	root := cli.New(strings.NewReader(""), &b, &b)
	flags := slices.Concat(root.Flags, root.Command("worker").Flags)
	for _, fl := range flags {
		name := fl.Names()[0]
		if name == "help" || name == "print-config" {
			continue
		}
		if _, ok := settings[name]; !ok {
			t.Errorf("--%s is not printed", name)
		}
	}
	if len(settings) < 40 {
		t.Errorf("only %d settings printed", len(settings))
	}
}

// TestPrintConfigChecksSettings: --print-config prints, then fails on a
// setting that would fail a start, with the same message.
func TestPrintConfigChecksSettings(t *testing.T) {
	isolateEnv(t)
	var out output
	code, got := runInto(context.Background(), &out, "", "worker", "--print-config", "--replicas", "9")
	if code == 0 {
		t.Fatalf("exit 0 with --replicas 9:\n%s", got)
	}
	if !strings.Contains(got, "SETTING") || !strings.Contains(got, "invalid setting --replicas (PATHUPDATE_REPLICAS): 9") {
		t.Fatalf("want the table, then the problem:\n%s", got)
	}
}
