package pathupdate_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pathupdate/pathupdate/pathupdate"
)

// FuzzClientConfig: NewClient and TokenSourceConfig.New accept exactly
// what their Validate accepts (after WithDefaults) and never panic;
// refusals are FieldErrors and never show the secret.
func FuzzClientConfig(f *testing.F) {
	f.Add("", "", "", "", int64(0), int64(0), "", "wx1", "secret-value", "")
	f.Add("http://127.0.0.1:1", "cloudcall", "env", "fn", int64(time.Second), int64(time.Second), "classic", "", "", "")
	f.Add("https://u:secret-value@api.example/x?y=1", "grpc", "", "", int64(-1), int64(-1), "file", "wx1", "secret-value", "/run/token")
	f.Add("ftp://x", "https", "", "", int64(0), int64(0), "magic", "", "", "")
	f.Fuzz(func(t *testing.T, base, transport, env, fn string, timeout, httpTimeout int64, kind, appID, secret, file string) {
		c := pathupdate.ClientConfig{APIBase: base, Tokens: pathupdate.NewStaticTokenSource("t"), Transport: transport, CloudEnv: env,
			CloudFunction: fn, Timeout: time.Duration(timeout), HTTPClient: &http.Client{Timeout: time.Duration(httpTimeout)}}
		verr := c.WithDefaults().Validate()
		cl, err := pathupdate.NewClient(c)
		if (verr == nil) != (err == nil) || (err == nil && cl == nil) {
			t.Fatalf("Validate %v, NewClient %v", verr, err)
		}
		if verr != nil && len(pathupdate.FieldErrorsOf(verr)) == 0 {
			t.Fatalf("no FieldError in %v", verr)
		}
		tc := pathupdate.TokenSourceConfig{Kind: kind, File: file, TokenConfig: pathupdate.TokenConfig{APIBase: base, AppID: appID, AppSecret: pathupdate.Secret(secret)}}
		verr = tc.WithDefaults().Validate()
		src, err := tc.New()
		if (verr == nil) != (err == nil) || (err == nil && src == nil) {
			t.Fatalf("Validate %v, New %v", verr, err)
		}
		if verr != nil && len(pathupdate.FieldErrorsOf(verr)) == 0 {
			t.Fatalf("no FieldError in %v", verr)
		}
	})
}
