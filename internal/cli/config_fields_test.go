package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestFieldFlagsNameRealSettings: every field the packages report maps to
// a setting (a flag with an environment variable) of a command, so a
// problem is never told with a flag that does not exist.
func TestFieldFlagsNameRealSettings(t *testing.T) {
	var b bytes.Buffer
	root := New(strings.NewReader(""), &b, &b)
	settings := settingNames(root)
	for field, flag := range fieldFlags() {
		if !settings[flag] {
			t.Errorf("%s maps to --%s, which is no setting", field, flag)
		}
	}
	for secret, file := range secretFiles() {
		if !settings[secret] || !settings[file] {
			t.Errorf("--%s / --%s: not both settings", secret, file)
		}
	}
}

// TestFlagNames: a problem speaks of the sibling settings by flag.
func TestFlagNames(t *testing.T) {
	flags := fieldFlags()
	for _, tt := range []struct{ field, problem, want string }{
		{"Worker.Retry.MaxInterval", "1ms is below InitialInterval 500ms: raise it", "1ms is below --retry-initial 500ms: raise it"},
		{"Streams.Duplicates", "5m0s exceeds MaxAge 1m0s", "5m0s exceeds --max-age 1m0s"},
		{"Streams.Duplicates", "5m0s exceeds DeadLetterMaxAge 1m0s", "5m0s exceeds DeadLetterMaxAge 1m0s"},
		{"Worker.AckWait", "0s is too short", "0s is too short"},
	} {
		if got := flagNames(flags, tt.field, tt.problem); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.field, got, tt.want)
		}
	}
}
