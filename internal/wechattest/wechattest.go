// Package wechattest builds, for tests, the WeChat client a worker uses,
// pointed at a sandbox: a stable token source with the credentials the
// sandbox accepts, over the sandbox's own HTTP client.
//
// It must not be imported by non-test code, and it fakes nothing: the
// client talks to the sandbox over real HTTP.
package wechattest

import (
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

// Client returns a pathupdate.Client on sb. APIBase, Tokens and HTTPClient
// of cfg are set here; the rest (Timeout, Transport, Logger, ...) is the
// caller's.
func Client(t testing.TB, sb *sandbox.Server, cfg pathupdate.ClientConfig) *pathupdate.Client {
	t.Helper()
	tokens, err := pathupdate.NewStableTokenSource(pathupdate.TokenConfig{
		APIBase: sb.URL, AppID: sandbox.DefaultAppID, AppSecret: pathupdate.Secret(sandbox.DefaultAppSecret), HTTPClient: sb.Client(),
	})
	if err != nil {
		t.Fatalf("wechattest: %v", err)
	}
	cfg.APIBase, cfg.Tokens, cfg.HTTPClient = sb.URL, tokens, sb.Client()
	c, err := pathupdate.NewClient(cfg)
	if err != nil {
		t.Fatalf("wechattest: %v", err)
	}
	return c
}
