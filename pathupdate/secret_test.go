package pathupdate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/sandbox"
)

const plain = "s3cr3t-VALUE-visible"

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := pathupdate.Secret(plain)
	type holder struct {
		Exported pathupdate.Secret
		Ptr      *pathupdate.Secret
	}
	h := holder{Exported: s, Ptr: &s}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, s)
		outputs["fmt struct "+verb] = fmt.Sprintf(verb, h)
		outputs["fmt ptr struct "+verb] = fmt.Sprintf(verb, &h)
		outputs["fmt slice "+verb] = fmt.Sprintf(verb, []pathupdate.Secret{s})
		outputs["fmt map "+verb] = fmt.Sprintf(verb, map[pathupdate.Secret]pathupdate.Secret{s: s})
	}
	outputs["Sprint"] = fmt.Sprint(s)
	outputs["Sprintln"] = fmt.Sprintln(s, h)
	outputs["String"] = s.String()
	outputs["GoString"] = s.GoString()
	outputs["Errorf"] = fmt.Errorf("wrapped %v: %w", s, fmt.Errorf("%s", s)).Error()

	j, err := json.Marshal(map[string]any{"a": s, "b": h})
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)

	var zl bytes.Buffer
	log := zerolog.New(&zl)
	log.Info().Interface("i", s).Any("a", h).Stringer("s", s).Fields(map[string]any{"f": s}).
		Msgf("msgf %v %s", s, h)
	log.Info().Fields([]any{"k", s}).Msg("list")
	outputs["zerolog"] = zl.String()

	var sl bytes.Buffer
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "s", s, "h", h)
	slog.New(slog.NewTextHandler(&sl, nil)).Info("x", "s", s)
	outputs["slog"] = sl.String()

	for name, out := range outputs {
		if strings.Contains(out, plain) || strings.Contains(out, fmt.Sprintf("%x", plain)) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["fmt %v"], "[redacted]") || !strings.Contains(outputs["zerolog"], "[redacted]") {
		t.Errorf("redaction marker missing: %q / %q", outputs["fmt %v"], outputs["zerolog"])
	}
	if s.Reveal() != plain {
		t.Errorf("Reveal = %q, want the value", s.Reveal())
	}
}

func TestSecretUnmarshalsPlainJSON(t *testing.T) {
	t.Parallel()
	var v struct{ S pathupdate.Secret }
	if err := json.Unmarshal([]byte(`{"S":"abc"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.S.Reveal() != "abc" {
		t.Fatalf("got %q", v.S.Reveal())
	}
}

// TestSecretsNeverLeak drives every kind of call through one sandbox with a
// trace-level logger and looks for the app secrets and every access_token
// the token endpoints handed out in all log lines and all error and Outcome
// texts. (Every test built on newEnv makes the same check at its end; this
// one also proves the check sees what it must.)
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Config{Orders: map[string]string{"W1": "evtok"}})
	const wrong = "wrong-secret-for-leak-test"
	e.addSecret(wrong)
	ctx := context.Background()
	stableTS := e.stable()
	stable := e.client(stableTS, 100*time.Millisecond)
	classicTS, err := pathupdate.NewClassicTokenSource(e.tokenConfig())
	if err != nil {
		t.Fatal(err)
	}
	classic := e.client(classicTS, 100*time.Millisecond)
	badCfg := e.tokenConfig()
	badCfg.AppSecret = wrong
	badTS, err := pathupdate.NewClassicTokenSource(badCfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := e.client(badTS, 0)

	faults := []sandbox.Faults{
		{},
		{SystemErrorRate: 1},
		{HTTP5xxRate: 1},
		{OutageUntil: e.clk.Now().Add(time.Hour)},
		{MinuteQuota: 1},
		{Latency: sandbox.Duration(time.Second)},
	}
	for _, f := range faults {
		e.srv.SetFaults(f)
		for _, c := range []*pathupdate.Client{stable, classic, bad} {
			e.note(c.UpdatePath(ctx, event("W1", "evtok")))
			e.note(c.UpdatePath(ctx, event("W404", "evtok")))
			e.note(c.UpdatePath(ctx, event("W1", "other")))
		}
	}
	e.srv.SetFaults(sandbox.Faults{})
	e.srv.RevokeTokens()
	e.clk.Advance(3 * time.Hour) // every token expired as well
	// The same token sources, through clients that wait as long as a
	// loaded machine needs for the call, the refused token, its refetch
	// and the call again (100 ms did not, under -race in CI).
	for _, ts := range []pathupdate.TokenSource{stableTS, classicTS} {
		if o := e.note(e.client(ts, 10*time.Second).UpdatePath(ctx, event("W1", "evtok"))); o.Kind != pathupdate.Delivered {
			t.Fatalf("after revocation: %v", o)
		}
	}
	e.srv.Close() // connection refused from here on
	for _, c := range []*pathupdate.Client{stable, classic, bad} {
		e.note(c.UpdatePath(ctx, event("W1", "evtok")))
	}
	classicTS.Invalidate(ctx, "")
	_, err = classicTS.Token(ctx)
	e.noteErr(err)

	// The check must have something to find.
	if n := len(e.spy.tokens()); n < 3 {
		t.Fatalf("the spy saw %d issued tokens, want at least 3", n)
	}
	logs := e.log.String()
	for _, want := range []string{`"waybill_id":"W1"`, `"errcode":40199`, `"duration":`, `"level":"debug"`, "REDACTED"} {
		if !strings.Contains(logs+strings.Join(e.texts, "\n"), want) {
			t.Fatalf("captured output lacks %s; the check would prove nothing", want)
		}
	}
	tok := e.spy.tokens()[0]
	if len(leaks([]string{"x?access_token=" + tok}, e.spy.tokens())) != 1 {
		t.Fatal("leaks does not find a planted token")
	}
	// checkNoSecrets runs at cleanup over everything captured above.
}

// TestReadSecretFile: trimmed content; a file over the limit (or one
// that never ends) refused without reading it whole; exposed when group
// or others may read it.
func TestReadSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    pathupdate.Secret
		exposed bool
		tooBig  bool
	}{
		{"private", write("a", "  s3cret\n", 0o600), "s3cret", false, false},
		{"group readable", write("b", "s3cret", 0o640), "s3cret", true, false},
		{"world readable", write("c", "s3cret", 0o604), "s3cret", true, false},
		{"at the limit", write("d", strings.Repeat("x", pathupdate.MaxSecretFileSize), 0o600), pathupdate.Secret(strings.Repeat("x", pathupdate.MaxSecretFileSize)), false, false},
		{"over the limit", write("e", strings.Repeat("x", pathupdate.MaxSecretFileSize+1), 0o600), "", false, true},
		{"endless", "/dev/zero", "", false, true},
	}
	for _, tt := range tests {
		got, exposed, err := pathupdate.ReadSecretFile(tt.path)
		if tt.tooBig {
			if !errors.Is(err, pathupdate.ErrSecretFileTooLarge) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("%s: %v, want ErrSecretFileTooLarge naming the path", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want || exposed != tt.exposed {
			t.Errorf("%s: %d bytes, exposed %v, %v", tt.name, len(got), exposed, err)
		}
	}
	if _, _, err := pathupdate.ReadSecretFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
