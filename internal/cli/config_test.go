package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pathupdate/pathupdate/internal/natstest"
	"github.com/pathupdate/pathupdate/pathupdate"
)

// writeConfig writes a config file for the test and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pathupdate.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printed runs `worker --print-config --sandbox` with args (the sandbox
// stands in for WeChat credentials, without which the check fails) and
// returns each setting's value and origin as printed.
func printed(t *testing.T, args ...string) map[string][2]string {
	t.Helper()
	var out output
	code, got := runInto(context.Background(), &out, "", append(args, "--sandbox")...)
	if code != 0 {
		t.Fatalf("%v: exit %d:\n%s", args, code, got)
	}
	settings := map[string][2]string{}
	for l := range strings.Lines(got) {
		f := strings.Fields(l)
		if len(f) < 3 || strings.HasPrefix(l, "#") || f[0] == "SETTING" {
			continue
		}
		settings[f[0]] = [2]string{f[1], strings.Join(f[2:], " ")}
	}
	return settings
}

// TestConfigPrecedence: flag > env > config file > default, for worker
// settings and for global ones, with --config before or after the
// command name or from PATHUPDATE_CONFIG.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "# settings for every command\nack-wait: 45s\nreplicas: 3\nnats-url: [nats://a:4222, nats://b:4222]\nlog-level:\n")
	from := "file " + file
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		setting string
		value   string
		origin  string
	}{
		{"default", nil, []string{"worker", "--print-config"}, "ack-wait", "20s", "default"},
		{"file after the command", nil, []string{"worker", "--print-config", "--config", file}, "ack-wait", "45s", from},
		{"file before the command", nil, []string{"--config=" + file, "worker", "--print-config"}, "ack-wait", "45s", from},
		{"file from PATHUPDATE_CONFIG", map[string]string{"PATHUPDATE_CONFIG": file}, []string{"worker", "--print-config"}, "replicas", "3", from},
		{"env over file", map[string]string{"PATHUPDATE_ACK_WAIT": "30s"}, []string{"worker", "--print-config", "--config", file},
			"ack-wait", "30s", "env PATHUPDATE_ACK_WAIT"},
		{"flag over env and file", map[string]string{"PATHUPDATE_ACK_WAIT": "30s"}, []string{"worker", "--print-config", "--config", file, "--ack-wait", "1m"},
			"ack-wait", "1m0s", "flag"},
		{"global setting from the file, --config after the command", nil, []string{"worker", "--print-config", "--config", file},
			"nats-url", `"nats://a:4222,nats://b:4222"`, from},
		{"global flag after the command over its env", map[string]string{"NATS_URL": "nats://env:4222"},
			[]string{"worker", "--print-config", "--nats-url", "nats://flag:4222"}, "nats-url", `"nats://flag:4222"`, "flag"},
		{"global env over the file", map[string]string{"NATS_URL": "nats://env:4222"}, []string{"worker", "--print-config", "--config", file},
			"nats-url", `"nats://env:4222"`, "env NATS_URL"},
		{"an empty number in the env falls through to the file", map[string]string{"PATHUPDATE_REPLICAS": ""},
			[]string{"worker", "--print-config", "--config", file}, "replicas", "3", from},
		{"an empty key in the file is not set", nil, []string{"worker", "--print-config", "--config", file}, "log-level", `"info"`, "default"},
		{"the config flag itself", nil, []string{"worker", "--print-config", "--config", file}, "config", `"` + file + `"`, "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, ok := printed(t, tt.args...)[tt.setting]
			if !ok {
				t.Fatalf("%s is not printed", tt.setting)
			}
			if got != [2]string{tt.value, tt.origin} {
				t.Fatalf("%s = %s from %s, want %s from %s", tt.setting, got[0], got[1], tt.value, tt.origin)
			}
		})
	}
}

// TestConfigFileErrors: a file that cannot be used stops every command
// with the file, the line and the key named.
func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown key", "ack_wait: 30s\n", []string{`line 1: "ack_wait" is not a setting`, "nats-url"}},
		{"per-invocation argument", "ack-wait: 30s\nyes: true\n", []string{`line 2: "yes" is not a setting`}},
		{"key given twice", "replicas: 3\nreplicas: 1\n", []string{`line 2: "replicas" is given twice`}},
		{"mapping value", "nats-url:\n  primary: nats://a:4222\n", []string{"line 2: nats-url:", "not a mapping"}},
		{"not YAML", "ack-wait: [30s\n", []string{"not YAML"}},
		{"not a mapping", "- ack-wait\n", []string{"line 1: want one mapping"}},
		{"value of the wrong type", "log-level: warn\nack-wait: soon\n", []string{`"soon"`, `key "ack-wait"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			file := writeConfig(t, tt.content)
			for _, cmd := range [][]string{{"worker", "--print-config"}, {"publish"}} {
				if cmd[0] == "publish" && strings.Contains(tt.content, "soon") {
					continue // ack-wait is no setting of publish: it ignores the key
				}
				var out output
				code, got := runInto(context.Background(), &out, "", append(cmd, "--config", file)...)
				if code == 0 {
					t.Fatalf("%s: exit 0 with a broken config file:\n%s", cmd[0], got)
				}
				for _, w := range append(tt.want, file) {
					if !strings.Contains(got, w) {
						t.Errorf("%s: the error does not say %q:\n%s", cmd[0], w, got)
					}
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		isolateEnv(t)
		t.Setenv("PATHUPDATE_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
		var out output
		code, got := runInto(context.Background(), &out, "", "worker", "--print-config")
		if code == 0 || !strings.Contains(got, "--config (PATHUPDATE_CONFIG)") || !strings.Contains(got, "none.yaml") {
			t.Fatalf("exit %d:\n%s", code, got)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		isolateEnv(t)
		if got := printed(t, "worker", "--print-config", "--config", writeConfig(t, "# nothing yet\n"))["ack-wait"]; got[1] != "default" {
			t.Fatalf("ack-wait from %s", got[1])
		}
	})
}

// TestConfigFileSharedByCommands: one file serves every command; a
// command takes the settings it has (here publish: nats-url) and ignores
// the others' (ack-wait).
func TestConfigFileSharedByCommands(t *testing.T) {
	isolateEnv(t)
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := pathupdate.EnsureStreams(context.Background(), js, pathupdate.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, "nats-url: "+s.ClientURL()+"\nack-wait: 45s\nlog-level: warn\n")
	var out output
	code, got := runInto(context.Background(), &out, line("CFG1", "t", 1)+"\n", "publish", "--config", file)
	if code != 0 || !strings.Contains(got, "accepted 1") {
		t.Fatalf("publish with the settings in a file: exit %d:\n%s", code, got)
	}
}

// TestInvalidSettingsFailAtStart: a value that cannot work stops the
// command before it connects or listens, with the flag, its environment
// variable and (if so) the config file named; every problem at once.
func TestInvalidSettingsFailAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		file string
		args []string
		want []string
	}{
		{"ack-wait zero", nil, "", []string{"worker", "--ack-wait", "0s"},
			[]string{"invalid setting --ack-wait (PATHUPDATE_ACK_WAIT): 0s is too short: use at least 1s (default 20s)"}},
		{"negative concurrency from env", map[string]string{"PATHUPDATE_CONCURRENCY": "-1"}, "", []string{"worker"},
			[]string{"--concurrency (PATHUPDATE_CONCURRENCY): -1: use at least 1"}},
		{"unknown token source from the file", nil, "token-source: nope\n", []string{"worker"},
			[]string{"--token-source (WECHAT_TOKEN_SOURCE; from config file ", `"nope": use stable`}},
		{"token source file without a file", nil, "", []string{"worker", "--token-source", "file"}, []string{"--access-token-file"}},
		{"unknown transport", nil, "", []string{"worker", "--transport", "carrier-pigeon"}, []string{"--transport (WECHAT_TRANSPORT)", "https or cloudcall"}},
		{"cloudcall without env", nil, "", []string{"worker", "--transport", "cloudcall"}, []string{"--cloud-env", "--cloud-function"}},
		{"replicas", nil, "", []string{"worker", "--replicas", "0"}, []string{"--replicas (PATHUPDATE_REPLICAS): 0: use 1 to 5"}},
		{"partitions", nil, "", []string{"worker", "--partitions", "5000"}, []string{"--partitions (PATHUPDATE_PARTITIONS): 5000"}},
		{"max-bytes zero", nil, "", []string{"worker", "--max-bytes", "0"}, []string{"--max-bytes (PATHUPDATE_MAX_BYTES)"}},
		{"negative max-age", nil, "", []string{"worker", "--max-age", "-1h"}, []string{"--max-age (PATHUPDATE_MAX_AGE): -1h0m0s: must not be negative"}},
		{"window longer than max-age", nil, "", []string{"worker", "--max-age", "1m", "--duplicate-window", "5m"}, []string{"--duplicate-window", "exceeds --max-age"}},
		{"retry-max below retry-initial", nil, "", []string{"worker", "--retry-max", "1ms"}, []string{"--retry-max (PATHUPDATE_RETRY_MAX)", "below --retry-initial"}},
		{"retry-attempts", nil, "", []string{"worker", "--retry-attempts", "0"}, []string{"--retry-attempts"}},
		{"http-addr", nil, "", []string{"worker", "--http-addr", "localhost"}, []string{"--http-addr (PATHUPDATE_HTTP_ADDR)", "host:port"}},
		{"embedded-port", nil, "", []string{"worker", "--embedded-port", "70000"}, []string{"--embedded-port (PATHUPDATE_EMBEDDED_PORT)"}},
		{"consumer name", nil, "", []string{"worker", "--consumer", "a.b"}, []string{"--consumer (PATHUPDATE_CONSUMER)"}},
		{"api-base", nil, "", []string{"worker", "--api-base", "api.weixin.qq.com"}, []string{"--api-base (WECHAT_API_BASE)"}},
		{"secret and its file", nil, "", []string{"worker", "--appsecret", "x", "--appsecret-file", "y"}, []string{"--appsecret and --appsecret-file are both set"}},
		{"log level", nil, "", []string{"worker", "--log-level", "verbose"}, []string{"--log-level (PATHUPDATE_LOG_LEVEL)"}},
		{"rate-limit negative", nil, "", []string{"worker", "--rate-limit", "-5"}, []string{"--rate-limit (PATHUPDATE_RATE_LIMIT): -5: use 0 (no limit) or a positive number"}},
		{"rate-limit not a number from env", map[string]string{"PATHUPDATE_RATE_LIMIT": "fast"}, "", []string{"worker"},
			[]string{"--rate-limit (PATHUPDATE_RATE_LIMIT)", `"fast" is neither a number of calls per second nor "auto"`}},
		{"rate-limit absurd", nil, "", []string{"worker", "--rate-limit", "1e12"}, []string{"--rate-limit (PATHUPDATE_RATE_LIMIT)", "beyond any WeChat limit"}},
		{"quota-interval", nil, "", []string{"worker", "--quota-interval", "10ms"}, []string{"--quota-interval (PATHUPDATE_QUOTA_INTERVAL): 10ms is too short"}},
		{"several at once", nil, "", []string{"worker", "--ack-wait", "0s", "--pinned-ttl", "10ms"}, []string{"--ack-wait", "--pinned-ttl"}},
		{"gateway command", nil, "", []string{"gateway", "--gateway-max-events", "0", "--gateway-token", gatewayTestToken},
			[]string{"--gateway-max-events (PATHUPDATE_GATEWAY_MAX_EVENTS)"}},
		{"gateway address", nil, "", []string{"gateway", "--gateway-addr", "8088", "--gateway-token", gatewayTestToken}, []string{"--gateway-addr"}},
		{"publish", map[string]string{"PATHUPDATE_LOG_FORMAT": "xml"}, "", []string{"publish"}, []string{"--log-format (PATHUPDATE_LOG_FORMAT)"}},
		{"status consumer", nil, "", []string{"status", "--consumer", "a b"}, []string{"--consumer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			if tt.args[0] == "status" && !hasCommand("status") {
				t.Skip("no status command in this tree")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			// Nothing may start: a refused NATS URL would make any start
			// fail with another message.
			args = append(args, "--nats-url", "nats://127.0.0.1:1")
			var out output
			code, got := runInto(context.Background(), &out, "", args...)
			if code == 0 {
				t.Fatalf("exit 0:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("the error does not say %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "connect to NATS") {
				t.Errorf("the command went on to connect:\n%s", got)
			}
		})
	}
}
