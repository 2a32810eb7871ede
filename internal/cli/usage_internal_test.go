package cli

import (
	"runtime/debug"
	"testing"
)

func TestVersionText(t *testing.T) {
	t.Parallel()
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/pathupdate/pathupdate", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"tagged release", info("v1.4.0", "vcs.revision", "0123abcd", "vcs.time", "2026-11-29T12:00:00Z", "vcs.modified", "false"), true,
			"pathupdate v1.4.0, revision 0123abcd of 2026-11-29T12:00:00Z, go1.26.8"},
		{"work tree with changes", info("(devel)", "vcs.revision", "0123abcd", "vcs.modified", "true"), true,
			"pathupdate (devel), revision 0123abcd, with uncommitted changes, go1.26.8"},
		{"go run", info(""), true,
			"pathupdate (devel), revision unknown (built without VCS information, e.g. by go run), go1.26.8"},
		{"no build info", nil, false, "pathupdate (version unknown: built without module information)"},
	} {
		if got := versionText(tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	names := []string{"worker", "publish", "sandbox", "demo", "gateway", "deadletter", "dl", "status"}
	for typed, want := range map[string]string{
		"wroker": "worker", "worekr": "worker", "publsh": "publish", "stauts": "status", "dmeo": "demo",
		"frobnicate": "", "x": "", "deadleter": "deadletter", "gatway": "gateway",
	} {
		if got := closest(typed, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", typed, got, want)
		}
	}
}
