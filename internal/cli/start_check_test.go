package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretFile writes content to a file of mode perm and returns its path.
func secretFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// TestPrintConfigExitsAsAStartWould: --print-config exits 1 exactly when
// a start would refuse before connecting, with the start's message, and 0
// when the start goes on to connect. Before, `worker --print-config`
// exited 0 with no credentials, with --appid alone and with an unreadable
// --appsecret-file, which the start then refused.
func TestPrintConfigExitsAsAStartWould(t *testing.T) {
	dir := t.TempDir()
	good := secretFile(t, "app-secret-0123\n", 0o600)
	token := secretFile(t, gatewayTestToken+"\n", 0o600)
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 5000)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // nil: accepted
	}{
		{"worker: no credentials", []string{"worker"}, []string{"--appid (WECHAT_APPID)", "--appsecret", "--sandbox"}},
		{"worker: appid alone", []string{"worker", "--appid", "wx1"}, []string{"--appsecret (WECHAT_APPSECRET) or --appsecret-file (WECHAT_APPSECRET_FILE): empty"}},
		{"worker: secret file missing", []string{"worker", "--appid", "wx1", "--appsecret-file", filepath.Join(dir, "none")},
			[]string{"--appsecret-file (WECHAT_APPSECRET_FILE)", "no such file"}},
		{"worker: secret file too big", []string{"worker", "--appid", "wx1", "--appsecret-file", big}, []string{"--appsecret-file", "more than 4096 bytes"}},
		{"worker: token file source without a file", []string{"worker", "--token-source", "file"}, []string{"--access-token-file (WECHAT_ACCESS_TOKEN_FILE): empty"}},
		{"worker: gateway without a token", []string{"worker", "--sandbox", "--gateway-addr", "127.0.0.1:0"},
			[]string{"--gateway-token (PATHUPDATE_GATEWAY_TOKEN) or --gateway-token-file (PATHUPDATE_GATEWAY_TOKEN_FILE): empty"}},
		{"worker: user in the API base", []string{"worker", "--sandbox", "--api-base", "https://u:p@api.example"}, []string{"--api-base (WECHAT_API_BASE)"}},
		{"worker: consumer name", []string{"worker", "--sandbox", "--consumer", "a.b"}, []string{"--consumer (PATHUPDATE_CONSUMER)"}},
		{"worker: unreadable NATS creds", []string{"worker", "--sandbox", "--creds", filepath.Join(dir, "none.creds")}, []string{"--creds (NATS_CREDS)"}},
		{"worker: sandbox", []string{"worker", "--sandbox"}, nil},
		{"worker: credentials", []string{"worker", "--appid", "wx1", "--appsecret", "s"}, nil},
		{"worker: secret in a file", []string{"worker", "--appid", "wx1", "--appsecret-file", good}, nil},
		{"worker: token file source", []string{"worker", "--token-source", "file", "--access-token-file", filepath.Join(dir, "written-later")}, nil},
		{"worker: no token, https API base", []string{"worker", "--token-source", "none"}, []string{"--api-base (WECHAT_API_BASE)", "use http://api.weixin.qq.com"}},
		{"worker: no token, cloud call", []string{"worker", "--token-source", "none", "--api-base", "http://api.weixin.qq.com", "--transport", "cloudcall", "--cloud-env", "e", "--cloud-function", "f"},
			[]string{"--transport (WECHAT_TRANSPORT): cloudcall needs an access_token"}},
		{"worker: no token, open-interface service", []string{"worker", "--token-source", "none", "--api-base", "http://api.weixin.qq.com"}, nil},
		{"worker: no token, sandbox", []string{"worker", "--token-source", "none", "--sandbox"}, nil},
		{"worker: no token, automatic rate limit", []string{"worker", "--token-source", "none", "--sandbox", "--rate-limit", "auto"},
			[]string{"--rate-limit (PATHUPDATE_RATE_LIMIT): auto follows getApiQuota's rate_limit, which needs an access_token"}},
		{"worker: with its gateway", []string{"worker", "--sandbox", "--gateway-addr", "127.0.0.1:0", "--gateway-token-file", token}, nil},
		{"gateway: no token", []string{"gateway"}, []string{"--gateway-token (PATHUPDATE_GATEWAY_TOKEN) or --gateway-token-file"}},
		{"gateway: short token", []string{"gateway", "--gateway-token", "short"}, []string{"--gateway-token (PATHUPDATE_GATEWAY_TOKEN): 5 characters"}},
		{"gateway: token file missing", []string{"gateway", "--gateway-token-file", filepath.Join(dir, "none")}, []string{"--gateway-token-file (PATHUPDATE_GATEWAY_TOKEN_FILE)"}},
		{"gateway: max events", []string{"gateway", "--gateway-token", gatewayTestToken, "--gateway-max-events", "0"}, []string{"--gateway-max-events"}},
		{"gateway: token", []string{"gateway", "--gateway-token", gatewayTestToken, "--gateway-addr", "127.0.0.1:0"}, nil},
		{"gateway: token in a file", []string{"gateway", "--gateway-token-file", token, "--gateway-addr", "127.0.0.1:0"}, nil},
		{"console: every interface without a token", []string{"console", "--console-addr", "0.0.0.0:0"},
			[]string{"--console-token (PATHUPDATE_CONSOLE_TOKEN) or --console-token-file (PATHUPDATE_CONSOLE_TOKEN_FILE): is required when the console listens on 0.0.0.0:0"}},
		{"console: short token", []string{"console", "--console-token", "short"}, []string{"--console-token (PATHUPDATE_CONSOLE_TOKEN): is 5 characters"}},
		{"console: token and file", []string{"console", "--console-token", gatewayTestToken, "--console-token-file", token}, []string{"--console-token and --console-token-file are both set"}},
		{"console: loopback", []string{"console", "--console-addr", "127.0.0.1:0"}, nil},
		{"console: token in a file", []string{"console", "--console-addr", "0.0.0.0:0", "--console-token-file", token}, nil},
		{"worker: console off loopback without a token", []string{"worker", "--sandbox", "--console-addr", ":0"},
			[]string{"--console-token (PATHUPDATE_CONSOLE_TOKEN) or --console-token-file (PATHUPDATE_CONSOLE_TOKEN_FILE): is required"}},
		{"worker: with its console", []string{"worker", "--sandbox", "--console-addr", "127.0.0.1:0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			// Nothing can connect: a start that passed its checks fails
			// connecting, one that did not never tries.
			args := append(tt.args, "--nats-url", "nats://127.0.0.1:1", "--http-addr", "127.0.0.1:0")
			if tt.args[0] == "gateway" || tt.args[0] == "console" {
				args = args[:len(args)-2]
			} else {
				args = append(args, "--start-timeout", "1s") // the worker waits that long for NATS
			}
			var out output
			pcode, printed := runInto(context.Background(), &out, "", append(args, "--print-config")...)
			scode, started := runInto(context.Background(), &out, "", args...)
			if scode == 0 {
				t.Fatalf("the start exited 0:\n%s", started)
			}
			connected := strings.Contains(started, "connect to NATS")
			if tt.want == nil {
				if pcode != 0 || !connected {
					t.Fatalf("want accepted: --print-config exit %d:\n%s\nstart:\n%s", pcode, printed, started)
				}
				return
			}
			if pcode != 1 || connected {
				t.Fatalf("want refused: --print-config exit %d:\n%s\nstart:\n%s", pcode, printed, started)
			}
			for _, w := range tt.want {
				if !strings.Contains(printed, w) || !strings.Contains(started, w) {
					t.Errorf("not both say %q:\n--print-config:\n%s\nstart:\n%s", w, printed, started)
				}
			}
		})
	}
}

// TestSecretFiles: a secret file is read through one bounded function: a
// device that never ends (/dev/zero, which ran the process out of memory)
// is refused naming the setting; a file others may read gives one warning
// per run, naming the setting and never the content.
func TestSecretFiles(t *testing.T) {
	const content = "Sekrit-file-content-42"
	t.Run("endless file", func(t *testing.T) {
		isolateEnv(t)
		for _, args := range [][]string{
			{"worker", "--appid", "wx1", "--appsecret-file", "/dev/zero"},
			{"gateway", "--gateway-token-file", "/dev/zero"},
		} {
			var out output
			code, got := runInto(context.Background(), &out, "", append(args, "--nats-url", "nats://127.0.0.1:1")...)
			if code != 1 || !strings.Contains(got, "invalid setting --"+strings.TrimPrefix(args[len(args)-2], "--")) || !strings.Contains(got, "more than 4096 bytes") {
				t.Fatalf("%s: exit %d:\n%s", args[0], code, got)
			}
		}
	})
	t.Run("readable by others", func(t *testing.T) {
		isolateEnv(t)
		for _, tc := range []struct {
			args    []string
			setting string
		}{
			{[]string{"worker", "--start-timeout", "1s", "--appid", "wx1", "--appsecret-file"}, "--appsecret-file"}, // the worker waits that long for NATS
			{[]string{"gateway", "--gateway-token-file"}, "--gateway-token-file"},
		} {
			for _, perm := range []os.FileMode{0o644, 0o640, 0o600} {
				p := secretFile(t, content+"-0123456789", perm)
				var out output
				_, got := runInto(context.Background(), &out, "", append(tc.args, p, "--nats-url", "nats://127.0.0.1:1")...)
				warned := strings.Count(got, "readable by group or others")
				if want := map[bool]int{true: 1, false: 0}[perm&0o044 != 0]; warned != want {
					t.Errorf("%s mode %o: %d warnings, want %d:\n%s", tc.setting, perm, warned, want, got)
				}
				if warned > 0 && !strings.Contains(got, tc.setting+" "+p) {
					t.Errorf("the warning does not name %s %s:\n%s", tc.setting, p, got)
				}
				if strings.Contains(got, content) {
					t.Errorf("the secret is in the output:\n%s", got)
				}
				if !strings.Contains(got, "connect to NATS") {
					t.Errorf("%s mode %o: refused, want only a warning:\n%s", tc.setting, perm, got)
				}
			}
		}
	})
}
