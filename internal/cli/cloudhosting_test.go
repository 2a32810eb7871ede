package cli_test

import (
	"context"
	"strings"
	"testing"
)

// TestNoTokenSourceWarnsOfUnusedCredentials: --token-source none starts
// without credentials; given some anyway, the worker warns once for each,
// naming the setting and never its value, and says it calls with no token.
func TestNoTokenSourceWarnsOfUnusedCredentials(t *testing.T) {
	isolateEnv(t)
	const secret = "Sekrit-app-secret-19"
	var out output
	code, got := runInto(context.Background(), &out, "", "worker", "--token-source", "none", "--api-base", "http://api.weixin.qq.com",
		"--appid", "wx1", "--appsecret", secret, "--nats-url", "nats://127.0.0.1:1", "--http-addr", "127.0.0.1:0", "--start-timeout", "1s")
	if code == 0 || !strings.Contains(got, "connect to NATS") {
		t.Fatalf("exit %d: want the start to pass its checks and fail connecting:\n%s", code, got)
	}
	for _, want := range []string{"--appid (WECHAT_APPID)", "--appsecret / --appsecret-file", "with no access_token, through WeChat Cloud Hosting's open-interface service"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(got, want), got)
		}
	}
	if strings.Contains(got, secret) {
		t.Fatalf("the log holds the app secret:\n%s", got)
	}
}
