package cli

import (
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// FuzzParseConfig feeds arbitrary bytes to the config file parser with
// the real commands' setting names. It must never panic; a value it
// returns is for a known setting and is one line of text or a joined
// list; what it accepts, written back as YAML, reads back the same; and
// it is deterministic. Seeds: testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"nats-url: [nats://nats-1:4222, nats://nats-2:4222]\ncreds: /etc/pathupdate/worker.creds\nack-wait: 30s\nreplicas: 3\n",
		"",
		"replicas:\n",
		"- a\n- b\n",
		"ack-wait: &a 30s\nmember-ttl: *a\n",
		"nats-url: {a: b}\n",
		"nosuch: 1\nreplicas: 1\nreplicas: 2\n",
	} {
		f.Add([]byte(s))
	}
	known := settingNames(New(strings.NewReader(""), io.Discard, io.Discard))
	isKnown := func(k string) bool { return known[k] }
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := parseConfig(data, isKnown)
		again, err2 := parseConfig(data, isKnown)
		if (err == nil) != (err2 == nil) || len(values) != len(again) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		for k, v := range values {
			if !known[k] {
				t.Fatalf("value for %q, which is no setting", k)
			}
			if again[k] != v {
				t.Fatalf("not deterministic for %q: %q / %q", k, v, again[k])
			}
		}
		if err != nil {
			return
		}
		// Written back as YAML (each value a string), it reads back the same.
		b, merr := yaml.Marshal(values)
		if merr != nil {
			t.Fatalf("marshal %v: %v", values, merr)
		}
		back, err := parseConfig(b, isKnown)
		if err != nil {
			t.Fatalf("%q parsed to %q, written back as %q which does not parse: %v", data, values, b, err)
		}
		for k, v := range values {
			if back[k] != v {
				t.Fatalf("%q: %q read back as %q (from %q)", k, v, back[k], b)
			}
		}
	})
}
