package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestConfirmTakesOnlyYes(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "y": true,
		"n\n": false, "\n": false, "": false, "yeah\n": false, "no\ny\n": false} {
		var out bytes.Buffer
		if got := confirm(strings.NewReader(in), &out, "Replay 101 dead letters?"); got != want {
			t.Errorf("answer %q: %v, want %v", in, got, want)
		}
		if out.String() != "Replay 101 dead letters? [y/N] " {
			t.Errorf("prompt %q", out.String())
		}
	}
}
